gpustack "release" {
  version = "v2.2.3"
  variant = "cpu"
  volume "data" { name = "release-data" }
}

gpustack "dev" {
  version = "dev"
  variant = "cuda12.8"
  port    = 8081
  volume "data" { name = "dev-data" }
}

gpustack "branch" {
  version = "v2.2-dev"
  variant = "npu"
  port    = 8082
  volume "data" { name = "branch-data" }
}
