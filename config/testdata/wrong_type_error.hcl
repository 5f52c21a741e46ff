gpustack "main" {
  version = "v2.2.3"
  port    = "eighty"
  args    = "--disable-worker"
  env     = ["GPUSTACK_DEBUG=true"]
  labels  = { team = ["ml"] }
  volume "data" { name = "gpustack-data" }
  policy { allow_dev = "maybe" }
  backup { keep = 2.5 }
}
