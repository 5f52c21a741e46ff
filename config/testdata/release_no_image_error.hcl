gpustack "ancient" {
  version = "0.1.0"
  volume "data" { name = "ancient-data" }
}
