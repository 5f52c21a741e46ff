gpustack "main" {
  version = "stable"
  volume "data" { name = "gpustack-data" }
}
