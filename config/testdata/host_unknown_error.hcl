host "gpu1" {
  docker_host = "ssh://admin@gpu1"
}

host "gpu2" {
  docker_host = "ssh://gpu2:2200"
}

gpustack "main" {
  host    = "gpu3"
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
}

# Conflicts are still checked per host.
gpustack "a" {
  host    = "gpu1"
  version = "v2.2.3"
  port    = 8080
  volume "data" { name = "a-data" }
}

gpustack "b" {
  host    = "gpu1"
  version = "v2.2.3"
  port    = 8080
  volume "data" { name = "a-data" }
}
