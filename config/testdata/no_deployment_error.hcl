variable "tag" { default = "v2.2.3" }
