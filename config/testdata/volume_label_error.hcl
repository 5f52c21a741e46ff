gpustack "main" {
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
  volume "models" { host_path = "/srv/models" }
}
