gpustack "inside" {
  version = "v2.2.3"
  volume "data" { name = "inside-data" }
  volume "cache" {
    name = "inside-cache"
    path = "/var/lib/gpustack/postgresql"
  }
}

gpustack "above" {
  version = "v2.2.3"
  port    = 8081
  volume "data" { name = "above-data" }
  volume "cache" {
    name = "above-cache"
    path = "/var/lib"
  }
}
