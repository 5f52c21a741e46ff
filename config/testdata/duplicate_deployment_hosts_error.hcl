host "gpu1" { docker_host = "unix:///var/run/docker.sock" }
host "gpu2" { docker_host = "unix:///run/gpu2/docker.sock" }

gpustack "main" {
  host    = "gpu1"
  version = "v0.5.1"
  volume "data" { name = "gpustack-data" }
}

gpustack "main" {
  host    = "gpu2"
  version = "v0.5.1"
  volume "data" { name = "gpustack-data" }
}
