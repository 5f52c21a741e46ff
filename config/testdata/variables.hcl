# --var beats the environment, which beats the default. Values given outside
# the files are strings and are converted where a number or bool is needed.
# test-var: http_port=8088
# test-var: tag=v2.2.2
# test-env: GPUSTACK_DEPLOY_VAR_tag=v2.0.0
# test-env: GPUSTACK_DEPLOY_VAR_keep_backups=7
# test-env: GPUSTACK_DEPLOY_VAR_pre=true
# test-env: UNRELATED=1
variable "http_port" { default = 80 }
variable "tag" { default = "v2.2.3" }
variable "keep_backups" {}
variable "pre" { default = false }
variable "env_name" { default = "staging" }

gpustack "staging" {
  version        = var.tag
  container_name = "gpustack-${var.env_name}"
  port           = var.http_port
  labels         = { env = var.env_name }
  volume "data" { name = "gpustack-${var.env_name}-data" }
  policy { allow_prerelease = var.pre }
  backup { keep = var.keep_backups }
}
