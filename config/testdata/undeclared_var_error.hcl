# test-var: admin_pasword=x
# test-env: GPUSTACK_DEPLOY_VAR_region=eu
variable "admin_password" {
  sensitive = true
  default   = "x"
}

gpustack "main" {
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
}
