gpustack "main" {
  version = "v0.7.1"
  variant = "tpu"
  volume "data" { name = "gpustack-data" }
}
