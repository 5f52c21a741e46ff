gpustack "main" {
  version = "v2.2.3"
  volume "cache" { name = "gpustack-cache" }
}
