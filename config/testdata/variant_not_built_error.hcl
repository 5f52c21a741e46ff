gpustack "main" {
  version = "v0.4.0"
  variant = "rocm"
  volume "data" { name = "gpustack-data" }
}
