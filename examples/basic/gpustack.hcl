# A GPUStack server (SQLite era) with its database and its model cache in
# separate volumes, pinned to a release, backed up before every upgrade.
#
#   gpustack-deploy plan  -f examples/basic
#   gpustack-deploy apply -f examples/basic
#
# Upgrade by changing `version` (or --var version=v0.6.0) and applying again.

variable "version" {
  description = "GPUStack release to run"
  default     = "v0.5.1"
}

variable "admin_password" {
  description = "Password of the first admin user (GPUSTACK_DEPLOY_VAR_admin_password)"
  sensitive   = true
  default     = "change-me-before-production"
}

gpustack "demo" {
  version        = var.version
  variant        = "cpu"
  image          = "gpustack/gpustack"
  container_name = "gpustack-demo"
  port           = 18080
  listen_address = "127.0.0.1"
  args           = ["--disable-worker"]
  env = {
    GPUSTACK_BOOTSTRAP_PASSWORD = var.admin_password
  }

  volume "data" { name = "gpustack-demo-data" }
  volume "cache" { name = "gpustack-demo-cache" }

  policy {
    allow_dev        = false
    allow_prerelease = false
    pull             = "missing"
  }

  backup {
    dir            = "./backups"
    before_upgrade = true
    keep           = 5
  }

  health { timeout = "5m" }
}
