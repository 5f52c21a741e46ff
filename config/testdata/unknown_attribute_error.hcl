gpustack "main" {
  version = "v2.2.3"
  colour  = "blue"
  volume "data" { name = "gpustack-data" }
  network { mode = "host" }
}

resource "docker_container" "x" {}
