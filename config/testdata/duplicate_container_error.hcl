gpustack "one" {
  version        = "v2.2.3"
  container_name = "gpustack"
  volume "data" { name = "one-data" }
}

gpustack "two" {
  version        = "v2.2.3"
  container_name = "gpustack"
  port           = 8081
  volume "data" { name = "two-data" }
}
