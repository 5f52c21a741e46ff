gpustack "main" {
  version = "v2.2.3"
  args = [
    "--token", "plain-token",
    "--bootstrap-password=plain-password",
    "--database-url", "mysql://root@db/gpustack",
    "--api-key=plain-key",
    "-t", "plain-short",
  ]
  volume "data" { name = "gpustack-data" }
}
