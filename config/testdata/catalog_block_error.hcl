catalog { file = "./missing.json" }
catalog {}

gpustack "main" {
  version = "v2.3.0"
  volume "data" { name = "gpustack-data" }
}
