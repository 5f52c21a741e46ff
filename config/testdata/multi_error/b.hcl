variable "tag" { default = "v2.2.2" }

gpustack "main" {
  version = var.tag
  port    = 8081
  volume "data" { name = "other-data" }
}

gpustack "copy" {
  version = var.tag
  volume "data" { name = "gpustack-data" }
}
