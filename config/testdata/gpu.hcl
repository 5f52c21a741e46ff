# A v2 GPU server as GPUStack's docs run it: host network, privileged,
# the nvidia runtime, every GPU, the Docker socket and a large /dev/shm.
gpustack "gpu" {
  version        = "v2.2.3"
  container_port = 8080
  network_mode   = "host"
  gpus           = "all"
  runtime        = "nvidia"
  privileged     = true
  ipc_mode       = "host"
  shm_size       = "16g"
  devices        = ["/dev/dri", "/dev/kfd:/dev/kfd:rwm", "/dev/nvidia0:/dev/gpu0", "/dev/fuse:r"]
  volume "data" { name = "gpu-data" }
  volume "cache" { host_path = "/srv/model-cache" }

  mount "docker-sock" {
    source    = "/var/run/docker.sock"
    target    = "/var/run/docker.sock"
    read_only = false
  }
  mount "models" {
    source    = "gpu-models"
    target    = "/models/"
    read_only = true
  }
}
