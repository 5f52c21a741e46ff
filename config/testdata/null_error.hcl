# null means "not written": defaults apply, required values are missing.
gpustack "main" {
  version = null
  port    = null
  volume "data" { name = null }
}
