gpustack "main" {
  version = "v2.2.3"
  restart = "sometimes"
  volume "data" { name = "gpustack-data" }
  policy { pull = "daily" }
}
