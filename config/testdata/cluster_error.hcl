# What a worker block may not say, and what its server must.
variable "api_key" {
  default = "plain"
}

host "far" {
  docker_host = "ssh://admin@far.example.com"
}

gpustack "prod" {
  version     = "v2.2.3"
  worker_port = 10150
  volume "data" { name = "gpustack-data" }
}

gpustack "old" {
  version = "v0.7.1"
  variant = "cpu"
  api_key = var.api_key
  admin_password = var.api_key
  volume "data" { name = "gpustack-old-data" }
  rollout {
    max_parallel = 0
  }
}

worker "w1" {
  server       = gpustack.prod
  database_url = "postgresql://x"
  port         = 8080
  args         = ["--token", "abc", "--server-url=http://x", "--worker-name", "n"]
  env          = { GPUSTACK_TOKEN = "x", GPUSTACK_WORKER_PORT = "1" }
  volume "data" { name = "gpustack-data" }
  backup { dir = "./b" }
}

worker "w2" {
  server = gpustack.nope
  volume "data" { name = "w2" }
}

worker "w3" {
  volume "data" { name = "w3" }
}

worker "w4" {
  host    = "far"
  server  = gpustack.prod
  version = "v0.7.1"
  variant = "cpu"
  volume "data" { name = "w4" }
}

worker "w5" {
  server      = gpustack.old
  worker_name = "two words"
  server_url  = "ftp://x"
  volume "data" { name = "w5" }
}
