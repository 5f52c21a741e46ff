gpustack "main" {
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
  policy { allow_dev = true }
  policy { allow_dev = false }
}
