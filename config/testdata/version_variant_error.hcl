gpustack "release" {
  version = "v0.5.1-cpu"
  volume "data" { name = "release-data" }
}

gpustack "dev" {
  version = "main-cpu"
  port    = 8081
  volume "data" { name = "dev-data" }
}
