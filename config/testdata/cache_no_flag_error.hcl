gpustack "main" {
  version = "0.3.1"
  volume "data" { name = "gpustack-data" }
  volume "cache" { name = "gpustack-cache" }
}
