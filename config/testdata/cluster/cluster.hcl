# A server on one host and three workers on two others, upgraded two at a
# time. The worker hosts give their address, so the server is reached at
# its host's address and every container is probed there.
# test-var: api_key=hunter2-s3cr3t-token

variable "api_key" {
  sensitive = true
}

host "gpu0" {
  docker_host = "ssh://admin@gpu0.example.com"
  address     = "10.0.0.10"
}

host "gpu1" {
  docker_host = "ssh://admin@gpu1.example.com"
  address     = "GPU1.example.com"
}

host "gpu2" {
  docker_host = "ssh://admin@gpu2.example.com"
}

gpustack "prod" {
  host    = "gpu0"
  version = "v2.2.3"
  api_key = var.api_key
  # Or, instead of an API key, the admin user's password (a login).
  admin_password = var.api_key
  volume "data" { name = "gpustack-data" }
  rollout {
    max_parallel = 2
  }
}

worker "gpu1" {
  host   = "gpu1"
  server = gpustack.prod
  gpus   = "all"
  volume "data" { name = "gpustack-worker-data" }
  volume "cache" { name = "gpustack-models" }
}

# A second worker on the same host: its own data volume and port.
worker "gpu1b" {
  host        = "gpu1"
  server      = "prod"
  worker_port = 10160
  worker_name = "gpu1-second"
  volume "data" { name = "gpustack-worker-data-b" }
}

# A version of its own is a warning; a server URL of its own is taken as is.
worker "gpu2" {
  host       = "gpu2"
  server     = gpustack.prod
  version    = "v2.2.2"
  server_url = "https://gpustack.example.com/"
  volume "data" { name = "gpustack-worker-data" }
}
