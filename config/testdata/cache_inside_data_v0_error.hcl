gpustack "main" {
  version = "v0.7.1"
  volume "data" { name = "gpustack-data" }
  volume "cache" {
    name = "gpustack-cache"
    path = "/var/lib/gpustack/cache"
  }
}
