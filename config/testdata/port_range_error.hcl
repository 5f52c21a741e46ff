gpustack "main" {
  version        = "v2.2.3"
  port           = 0
  container_port = 70000
  volume "data" { name = "gpustack-data" }
}

gpustack "fraction" {
  version = "v2.2.3"
  port    = 80.5
  volume "data" { name = "fraction-data" }
}
