# On the host network nothing is published: port and listen_address are
# errors, and two deployments listening on one host port clash.
gpustack "a" {
  version        = "v2.2.3"
  network_mode   = "host"
  port           = 8080
  listen_address = "127.0.0.1"
  volume "data" { name = "a-data" }
}

gpustack "b" {
  version      = "v2.2.3"
  network_mode = "host"
  volume "data" { name = "b-data" }
}

gpustack "c" {
  version        = "v2.2.3"
  port           = 80
  listen_address = "127.0.0.1"
  volume "data" { name = "c-data" }
}
