# test-var: db_url=postgresql://root:hunter2-s3cr3t-token@db/gpustack
variable "db_url" { sensitive = true }

gpustack "legacy" {
  version = "v0.7.1"
  args    = ["--enable-worker", "--database-port=5433", "--database-url", var.db_url]
  env = {
    GPUSTACK_ENABLE_WORKER      = "true"
    GPUSTACK_DATABASE_PORT      = "5433"
    GPUSTACK_DATA_MIGRATION     = "true"
    GPUSTACK_MIGRATION_DATA_DIR = "/var/lib/gpustack"
  }
  volume "data" { name = "legacy-data" }
}

gpustack "first" {
  version = "v2.0.0"
  port    = 8081
  args    = ["--enable-worker", "--database-url=${var.db_url}"]
  env     = { GPUSTACK_DATABASE_URL = var.db_url, GPUSTACK_DISABLE_WORKER = "true" }
  volume "data" { name = "first-data" }
}
