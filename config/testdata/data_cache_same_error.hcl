gpustack "named" {
  version = "v2.2.3"
  volume "data" { name = "shared" }
  volume "cache" { name = "shared" }
}

gpustack "nested" {
  version = "v2.2.3"
  port    = 8081
  volume "data" { host_path = "/srv/gpustack" }
  volume "cache" { host_path = "/srv/gpustack/cache" }
}

gpustack "same" {
  version = "v2.2.3"
  port    = 8082
  volume "data" { host_path = "/srv/same" }
  volume "cache" { host_path = "/srv/same/" }
}
