variable "tag" { default = "v2.2.3" }

gpustack "main" {
  version = var.tga
  image   = gpustack
  labels  = { a = var }
  volume "data" { name = "gpustack-data" }
}
