variable "tag" {
  description = "Image tag"
}

gpustack "main" {
  version = var.tag
  volume "data" { name = "gpustack-data" }
}
