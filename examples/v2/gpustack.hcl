# A GPUStack v2 server: the embedded PostgreSQL lives in the data volume,
# the model cache in a volume of its own (mounted at /var/lib/gpustack/cache,
# where v2 expects it), a logical dump before every upgrade.
#
#   gpustack-deploy plan  -f examples/v2
#   gpustack-deploy apply -f examples/v2
#
# Coming from a v0.x deployment? Point `volume "data"` at its data volume and
# plan: the jump is one planned step (whole-volume backup, the one-time data
# migration proven by its done-file, log line and rows, then the container
# recreated without the migration switch), rolled back as a whole on failure.

variable "version" {
  description = "GPUStack v2 release to run"
  default     = "v2.2.3"
}

variable "admin_password" {
  description = "Password of the first admin user (GPUSTACK_DEPLOY_VAR_admin_password)"
  sensitive   = true
  default     = "change-me-before-production"
}

gpustack "v2" {
  version        = var.version
  container_name = "gpustack-v2"
  port           = 18081
  listen_address = "127.0.0.1"
  env = {
    GPUSTACK_BOOTSTRAP_PASSWORD = var.admin_password
  }

  volume "data" { name = "gpustack-v2-data" }
  volume "cache" { name = "gpustack-v2-cache" }

  backup {
    dir            = "./backups"
    before_upgrade = true
    method         = "pg-dump" # or "pg-files": PGDATA archived while GPUStack is stopped
    keep           = 5
  }

  # PostgreSQL may reindex on its first start after an upgrade.
  health { timeout = "5m" }
}
