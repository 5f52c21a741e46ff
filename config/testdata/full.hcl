# Every attribute and block written out, v0.x era with a variant.
variable "admin_password" {
  description = "Bootstrap password"
  sensitive   = true
  default     = "not-the-real-one"
}

gpustack "prod" {
  version        = "v0.5.1"
  variant        = "cpu"
  image          = "quay.io/gpustack/gpustack"
  container_name = "gpustack-production"
  port           = 8080
  container_port = 8081
  listen_address = "0.0.0.0"
  args           = ["--disable-worker", "--bootstrap-password", var.admin_password]
  env            = { GPUSTACK_DEBUG = "false", GPUSTACK_PORT = "8081" }
  labels         = { team = "ml", "com.example.tier" = "gold" }
  restart        = "always"

  volume "data" {
    name = "gpustack-prod-data"
  }
  volume "cache" {
    host_path = "/srv/model-cache/"
    path      = "/data/model-cache"
  }

  policy {
    allow_dev        = false
    allow_prerelease = true
    allow_floating   = false
    allow_downgrade  = true
    pull             = "always"
  }
  backup {
    dir            = "/var/backups/gpustack"
    before_upgrade = false
    keep           = 3
  }
  health {
    timeout = "15m30s"
    address = "127.0.0.1"
  }
}
