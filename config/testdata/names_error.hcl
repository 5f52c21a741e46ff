gpustack "Prod!" {
  version = "v2.2.3"
  volume "data" { name = "prod-data" }
}

gpustack "ok" {
  version        = "v2.2.3"
  container_name = "-ok"
  port           = 8081
  volume "data" { name = "ok-data" }
}
