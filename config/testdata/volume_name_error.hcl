gpustack "main" {
  version = "v2.2.3"
  volume "data" { name = "gpustack data" }
  volume "cache" { name = "x" }
}
