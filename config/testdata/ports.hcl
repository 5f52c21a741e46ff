# Same port on distinct addresses is fine; a port bound to one address is
# health-checked there (and an address that cannot reach it is a warning).
gpustack "a" {
  version        = "v2.2.3"
  listen_address = "10.0.0.5"
  volume "data" { name = "a-data" }
}

gpustack "b" {
  version        = "v2.2.3"
  listen_address = "10.0.0.6"
  volume "data" { name = "b-data" }
  health { address = "127.0.0.1" }
}

gpustack "c" {
  version        = "v2.2.3"
  port           = 8443
  listen_address = "::"
  volume "data" { name = "c-data" }
}
