gpustack "alpha" {
  version = "v0.7.1"
  variant = "cuda12.8"
  volume "data" { host_path = "/srv/alpha/data" }
  volume "cache" { host_path = "/srv/alpha/cache" }
}
