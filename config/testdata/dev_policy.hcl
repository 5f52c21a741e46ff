# Development and floating tags are valid configuration; the policy says
# whether plan may use them.
gpustack "nightly" {
  version = "dev-47277d7"
  volume "data" { name = "nightly-data" }
  volume "cache" { host_path = "/srv/cache/nightly" }
  policy {
    allow_dev = true
    pull      = "always"
  }
}

gpustack "branch" {
  version = "v0.7-dev"
  variant = "npu"
  port    = 8081
  volume "data" { name = "branch-data" }
  volume "cache" { host_path = "/srv/cache/branch" }
  policy { allow_dev = true }
}

gpustack "floating" {
  version = "latest"
  variant = "cpu"
  port    = 8082
  volume "data" { name = "floating-data" }
  volume "cache" { name = "floating-cache" }
  policy { allow_floating = true }
}

gpustack "old-main" {
  version = "main"
  variant = "rocm"
  port    = 8083
  volume "data" { name = "old-main-data" }
  policy { allow_dev = true }
}
