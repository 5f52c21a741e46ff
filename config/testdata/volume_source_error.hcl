gpustack "both" {
  version = "v2.2.3"
  volume "data" {
    name      = "gpustack-data"
    host_path = "/srv/gpustack"
  }
}

gpustack "neither" {
  version = "v2.2.3"
  port    = 8081
  volume "data" {}
}
