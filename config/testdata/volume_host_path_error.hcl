gpustack "main" {
  version = "v2.2.3"
  volume "data" { host_path = "data/gpustack" }
  volume "cache" {
    host_path = "/srv/cache"
    path      = "cache"
  }
}
