gpustack "main" {
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
}

gpustack "main" {
  version = "v2.2.2"
  port    = 8081
  volume "data" { name = "gpustack-data-2" }
}
