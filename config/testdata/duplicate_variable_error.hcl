variable "tag" { default = "v2.2.3" }
variable "tag" { default = "v2.2.2" }

gpustack "main" {
  version = var.tag
  volume "data" { name = "gpustack-data" }
}
