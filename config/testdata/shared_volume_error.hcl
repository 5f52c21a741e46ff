gpustack "one" {
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
  volume "cache" { host_path = "/srv/cache" }
}

gpustack "two" {
  version = "v2.2.3"
  port    = 8081
  volume "data" { name = "gpustack-data" }
  volume "cache" { host_path = "/srv/cache/two" }
}

gpustack "three" {
  version = "v2.2.3"
  port    = 8082
  volume "data" { host_path = "/srv" }
}
