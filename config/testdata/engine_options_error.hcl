# Engine options that are not what Docker takes.
variable "dev" {
  sensitive = true
  default   = "/dev/dri"
}

gpustack "a" {
  version      = "v2.2.3"
  network_mode = "overlay"
  gpus         = "some"
  runtime      = "nvidia runtime"
  privileged   = "yes"
  ipc_mode     = "container:other"
  shm_size     = "lots"
  devices      = ["dev/dri", "/dev/kfd:/dev/kfd:rwx", "/a:/b:r:w", "/dev/dri", "/dev/card0:/dev/dri", "/dev/fuse:rr"]
  volume "data" { name = "a-data" }
}

gpustack "b" {
  version  = "v2.2.3"
  port     = 8081
  gpus     = 0
  shm_size = "0"
  devices  = "/dev/dri"
  volume "data" { name = "b-data" }
}

gpustack "c" {
  version = "v2.2.3"
  port    = 8082
  gpus    = ["0", "0"]
  volume "data" { name = "c-data" }
}

gpustack "d" {
  version = "v2.2.3"
  port    = 8083
  gpus    = []
  volume "data" { name = "d-data" }
}

gpustack "e" {
  version = "v2.2.3"
  port    = 8084
  gpus    = true
  volume "data" { name = "e-data" }
}

gpustack "f" {
  version = "v2.2.3"
  port    = 8085
  devices = [var.dev]
  volume "data" { name = "f-data" }
}
