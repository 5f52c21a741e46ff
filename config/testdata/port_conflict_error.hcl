gpustack "any" {
  version = "v2.2.3"
  volume "data" { name = "any-data" }
}

gpustack "local" {
  version        = "v2.2.3"
  listen_address = "127.0.0.1"
  volume "data" { name = "local-data" }
}

gpustack "lan" {
  version        = "v2.2.3"
  port           = 8080
  listen_address = "10.0.0.5"
  volume "data" { name = "lan-data" }
}

gpustack "lan2" {
  version        = "v2.2.3"
  port           = 8080
  listen_address = "10.0.0.5"
  volume "data" { name = "lan2-data" }
}
