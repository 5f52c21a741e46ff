variable "tag" { default = "v2.2.3" }

gpustack "main" {
  version = var.tag
  volume "data" { name = "gpustack-data" }
}
