# test-var: secret=hunter2-s3cr3t-token
variable "secret" { sensitive = true }

gpustack "main" {
  version        = var.secret
  image          = "gpustack/${var.secret}"
  port           = var.secret
  container_name = var.secret
  labels         = { token = var.secret }
  volume "data" { name = var.secret }
}
