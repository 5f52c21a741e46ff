# test-var: db_url=postgresql://root:hunter2-s3cr3t-token@db/gpustack
variable "db_url" { sensitive = true }

gpustack "blue" {
  version      = "v2.2.3"
  database_url = var.db_url
  volume "data" { name = "blue-data" }
}

gpustack "green" {
  version      = "v2.2.3"
  port         = 8081
  database_url = var.db_url
  volume "data" { name = "green-data" }
}
