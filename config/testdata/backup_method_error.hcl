# test-var: db_url=postgresql://root:hunter2-s3cr3t-token@db/gpustack
variable "db_url" { sensitive = true }

gpustack "legacy" {
  version = "v0.7.1"
  volume "data" { name = "legacy-data" }
  backup {
    method     = "pg-files"
    external   = "acknowledged"
    tool_image = "postgres:17"
  }
}

gpustack "external" {
  version      = "v2.2.3"
  port         = 8081
  database_url = var.db_url
  volume "data" { name = "external-data" }
  backup {
    method     = "pg-dump"
    external   = "acknowledged"
    tool_image = "postgres:17"
  }
}

gpustack "badtool" {
  version      = "v2.2.3"
  port         = 8082
  database_url = var.db_url
  volume "data" { name = "badtool-data" }
  backup { tool_image = "Postgres 17" }
}

gpustack "badmethod" {
  version = "v2.2.3"
  port    = 8083
  volume "data" { name = "badmethod-data" }
  backup {
    method   = "rsync"
    external = "yes"
  }
}
