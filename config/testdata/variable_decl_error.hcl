variable "1st" { default = "x" }
variable "flag" {
  sensitive   = "sometimes"
  description = ["not", "a", "string"]
  default     = var.other
}
variable "other" { default = "v2.2.3" }

gpustack "main" {
  version = var.other
  volume "data" { name = "gpustack-data" }
}
