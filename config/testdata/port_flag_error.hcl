gpustack "flag" {
  version        = "v2.2.3"
  container_port = 80
  args           = ["--port", "8080"]
  volume "data" { name = "flag-data" }
}

gpustack "inline" {
  version = "v2.2.3"
  port    = 8081
  args    = ["--port=9000"]
  env     = { GPUSTACK_PORT = "9001" }
  volume "data" { name = "inline-data" }
}
