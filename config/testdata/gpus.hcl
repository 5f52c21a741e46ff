# The three forms of gpus, a count given as a --var string, and a
# host-network deployment next to a bridged one on another port.
# test-var: count=2
variable "count" {}

gpustack "counted" {
  version      = "v0.7.1"
  network_mode = "host"
  gpus         = var.count
  volume "data" { name = "counted-data" }
}

gpustack "listed" {
  version      = "v0.7.1"
  network_mode = "bridge"
  port         = 8081
  gpus         = ["0", "GPU-8f3c2a1e-7b1d-4c55-9a4e-1c2d3e4f5a6b"]
  runtime      = "nvidia"
  volume "data" { name = "listed-data" }
}

gpustack "number" {
  version = "v0.7.1"
  port    = 8082
  gpus    = 1
  volume "data" { name = "number-data" }
}
