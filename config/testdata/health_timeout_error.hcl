gpustack "unitless" {
  version = "v2.2.3"
  volume "data" { name = "unitless-data" }
  health { timeout = "600" }
}

gpustack "zero" {
  version = "v2.2.3"
  port    = 8081
  volume "data" { name = "zero-data" }
  health { timeout = "0s" }
}
