gpustack "main" {
  version        = "v2.2.3"
  listen_address = "localhost"
  volume "data" { name = "gpustack-data" }
  health { address = "10.0.0.256" }
}
