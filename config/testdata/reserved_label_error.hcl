gpustack "main" {
  version = "v2.2.3"
  labels  = { "io.gpustack-deploy.name" = "other", team = "ml" }
  volume "data" { name = "gpustack-data" }
}
