# Secrets from sensitive variables stay marked through templates and lists.
# test-var: token=hunter2-s3cr3t-token
# test-env: GPUSTACK_DEPLOY_VAR_db_password=hunter2-s3cr3t-token
variable "token" { sensitive = true }
variable "db_password" { sensitive = true }
variable "extra_args" {
  sensitive = true
  default   = ["--api-key", "hunter2-s3cr3t-token"]
}

gpustack "secure" {
  version = "v2.2.3"
  args    = ["--token", var.token]
  # The URL is sensitive because it is built from a sensitive variable.
  database_url = "postgresql://root:${var.db_password}@db/gpustack"
  env = {
    GPUSTACK_BOOTSTRAP_PASSWORD = var.token
    HF_TOKEN                    = "${var.token}"
    PLAIN                       = "visible"
  }
  volume "data" { host_path = "/srv/gpustack/secure" }
}

gpustack "secure2" {
  version = "v2.2.3"
  port    = 8081
  args    = var.extra_args
  volume "data" { name = "secure2-data" }
}
