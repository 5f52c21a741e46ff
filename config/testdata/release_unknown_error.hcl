gpustack "patch" {
  version = "v0.5.3"
  volume "data" { name = "patch-data" }
}

gpustack "prefix" {
  version = "v0.3.2"
  port    = 8081
  volume "data" { name = "prefix-data" }
}

gpustack "future" {
  version = "v3.0.0"
  port    = 8082
  volume "data" { name = "future-data" }
}

gpustack "rc" {
  version = "v2.2.4rc1"
  port    = 8083
  volume "data" { name = "rc-data" }
}
