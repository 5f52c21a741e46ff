# Flags whose meaning changed with v2, written where the release accepts them.
gpustack "v2" {
  version = "v2.2.3"
  # Deprecated since v2.0.1: a warning, not an error.
  args = ["--disable-worker", "--database-port", "5433"]
  volume "data" { name = "v2-data" }
}

gpustack "v2worker" {
  version = "v2.0.1"
  port    = 8081
  args    = ["--enable-worker"]
  env     = { GPUSTACK_DATABASE_PORT = "5434" }
  volume "data" { name = "v2worker-data" }
}

gpustack "legacy" {
  version = "v0.7.1"
  port    = 8082
  args    = ["--disable-worker"]
  env     = { GPUSTACK_DISABLE_WORKER = "true" }
  volume "data" { name = "legacy-data" }
}
