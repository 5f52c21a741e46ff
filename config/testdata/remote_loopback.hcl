# A port published on the loopback of another machine cannot be probed
# from here: a warning. An explicit health address (a tunnel) is taken.
host "gpu1" {
  docker_host = "ssh://admin@gpu1.example.com"
}

gpustack "tunnelled" {
  host           = "gpu1"
  version        = "v2.2.3"
  port           = 8080
  listen_address = "127.0.0.1"
  volume "data" { name = "gpustack-data" }
}

gpustack "probed" {
  host           = "gpu1"
  version        = "v2.2.3"
  port           = 8081
  listen_address = "127.0.0.1"
  volume "data" { name = "gpustack-data-2" }
  health { address = "127.0.0.1" }
}
