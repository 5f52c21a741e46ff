# A GPUStack v2 cluster: one server and a worker on every GPU host, all on
# the server's release. Upgrading is one edit (the version) and one apply:
# the server first (verified backup, migration, health, /version), then the
# workers two at a time, each put in maintenance mode through the server's
# API while it is recreated, so that no model instance is rescheduled.
#
#   GPUSTACK_DEPLOY_VAR_api_key=gpustack_… gpustack-deploy plan  -f examples/cluster
#   GPUSTACK_DEPLOY_VAR_api_key=gpustack_… gpustack-deploy apply -f examples/cluster
#
# The hosts below are examples: point docker_host and address at yours.

variable "version" {
  description = "GPUStack release of the server and, through it, of every worker"
  default     = "v2.2.3"
}

variable "api_key" {
  description = "An admin API key of the server (its UI, API Keys): maintenance mode and the workers' state"
  sensitive   = true
}

host "gpu0" {
  docker_host = "ssh://admin@gpu0.example.com"
  address     = "10.0.0.10" # where the workers and gpustack-deploy reach this host
}

host "gpu1" {
  docker_host = "ssh://admin@gpu1.example.com"
  address     = "10.0.0.11"
}

host "gpu2" {
  docker_host = "ssh://admin@gpu2.example.com"
  address     = "10.0.0.12"
}

gpustack "prod" {
  host         = "gpu0"
  version      = var.version
  network_mode = "host"
  api_key      = var.api_key

  volume "data" { name = "gpustack-data" }
  volume "cache" { name = "gpustack-cache" }

  backup {
    dir            = "./backups"
    before_upgrade = true
    keep           = 5
  }

  rollout {
    max_parallel = 2 # workers recreated at once
  }

  health { timeout = "5m" }
}

# Workers: no version (they follow the server), no token (read from the
# server's data volume on every recreate), a data volume of their own.
worker "gpu1" {
  host       = "gpu1"
  server     = gpustack.prod
  gpus       = "all"
  runtime    = "nvidia"
  privileged = true
  ipc_mode   = "host"

  volume "data" { name = "gpustack-worker-data" }
  volume "cache" { name = "gpustack-cache" }
  mount "docker" {
    source = "/var/run/docker.sock"
    target = "/var/run/docker.sock"
  }
}

worker "gpu2" {
  host       = "gpu2"
  server     = gpustack.prod
  gpus       = "all"
  runtime    = "nvidia"
  privileged = true
  ipc_mode   = "host"

  volume "data" { name = "gpustack-worker-data" }
  volume "cache" { name = "gpustack-cache" }
  mount "docker" {
    source = "/var/run/docker.sock"
    target = "/var/run/docker.sock"
  }
}
