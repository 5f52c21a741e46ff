gpustack "main" {
  version = "v0.7.1"
  args    = ["--cache-dir", "/models", "--data-dir=/data"]
  env     = { GPUSTACK_DATA_DIR = "/data", GPUSTACK_CACHE_DIR = "/models" }
  volume "data" { name = "gpustack-data" }
}
