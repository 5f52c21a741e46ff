# External databases: the URL comes from a sensitive variable and is never shown.
# test-var: pg_url=postgresql://gpustack:hunter2-s3cr3t-token@db.example:5432/gpustack
# test-env: GPUSTACK_DEPLOY_VAR_mysql_url=mysql://gpustack:hunter2-s3cr3t-token@mysql.example/gpustack
variable "pg_url" { sensitive = true }
variable "mysql_url" { sensitive = true }
variable "legacy_url" {
  sensitive = true
  default   = "mysql://gpustack:hunter2-s3cr3t-token@mysql.example/legacy"
}

gpustack "pg" {
  version      = "v2.2.3"
  database_url = var.pg_url
  volume "data" { name = "pg-data" }
}

gpustack "mysql" {
  version      = "v2.2.3"
  port         = 8081
  database_url = var.mysql_url
  volume "data" { name = "mysql-data" }
  backup { tool_image = "registry.example:5000/tools/mysql:8.0.36" }
}

gpustack "owned" {
  version      = "v0.7.1"
  port         = 8082
  database_url = var.legacy_url
  volume "data" { name = "owned-data" }
  backup { external = "acknowledged" }
}

gpustack "dump" {
  version = "v2.1.2"
  port    = 8083
  volume "data" { name = "dump-data" }
  backup { method = "pg-dump" }
}
