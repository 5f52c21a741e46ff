# test-var: plain_url=postgresql://root:hunter2-s3cr3t-token@db/gpustack
# test-var: secret_url=postgresql://root:hunter2-s3cr3t-token@db/gpustack
# test-var: no_scheme=root:hunter2-s3cr3t-token@db/gpustack
# test-var: sqlite_url=sqlite:////var/lib/gpustack/other.db
# test-var: mysql_url=mysql://root:hunter2-s3cr3t-token@db/gpustack
variable "plain_url" {}
variable "secret_url" { sensitive = true }
variable "no_scheme" { sensitive = true }
variable "sqlite_url" { sensitive = true }
variable "mysql_url" { sensitive = true }

gpustack "literal" {
  version      = "v2.2.3"
  database_url = "postgresql://root:pw@db/gpustack"
  volume "data" { name = "literal-data" }
}

gpustack "plain" {
  version      = "v2.2.3"
  port         = 8081
  database_url = var.plain_url
  volume "data" { name = "plain-data" }
}

gpustack "scheme" {
  version      = "v2.2.3"
  port         = 8082
  database_url = var.no_scheme
  volume "data" { name = "scheme-data" }
}

gpustack "v2sqlite" {
  version      = "v2.2.3"
  port         = 8083
  database_url = var.sqlite_url
  volume "data" { name = "v2sqlite-data" }
}

gpustack "oldpg" {
  version      = "0.3.2"
  port         = 8084
  database_url = var.secret_url
  volume "data" { name = "oldpg-data" }
}

gpustack "oldmysql" {
  version      = "v0.6.0"
  port         = 8085
  database_url = var.mysql_url
  volume "data" { name = "oldmysql-data" }
}

gpustack "v0sqlite" {
  version      = "v0.7.1"
  port         = 8086
  database_url = var.sqlite_url
  volume "data" { name = "v0sqlite-data" }
}
