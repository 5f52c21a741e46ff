gpustack "tag" {
  version = "v0.5.1"
  image   = "gpustack/gpustack:v0.5.1-cpu"
  volume "data" { name = "tag-data" }
}

gpustack "digest" {
  version = "v2.2.3"
  image   = "gpustack/gpustack@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  port    = 8081
  volume "data" { name = "digest-data" }
}

gpustack "upper" {
  version = "v2.2.3"
  image   = "GPUStack/GPUStack"
  port    = 8082
  volume "data" { name = "upper-data" }
}
