# A v2 release: the cache defaults to GPUStack's own cache directory.
gpustack "v2" {
  version = "v2.1.0"
  volume "data" { name = "gpustack-v2-data" }
  volume "cache" { name = "gpustack-v2-cache" }
  backup { dir = "backups/v2" }
}
