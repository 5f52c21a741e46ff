# test-var: http_port=eighty
# test-env: GPUSTACK_DEPLOY_VAR_pre=yes
variable "http_port" {}
variable "pre" {}

gpustack "main" {
  version = "v2.2.3"
  port    = var.http_port
  volume "data" { name = "gpustack-data" }
  policy { allow_prerelease = var.pre }
}
