gpustack "zeta" {
  version = "v2.3.0"
  port    = var.zeta_port
  volume "data" { name = "zeta-data" }
}
