gpustack "main" {
  variant = "cpu"
  volume "data" { name = "gpustack-data" }
}
