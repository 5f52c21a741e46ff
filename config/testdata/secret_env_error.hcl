gpustack "main" {
  version = "v2.2.3"
  env = {
    GPUSTACK_TOKEN        = "plain-token"
    HF_TOKEN              = "hf_plain"
    OPENAI_API_KEY        = "sk-plain"
    GPUSTACK_DATABASE_URL = "postgresql://root@db/gpustack"
    GPUSTACK_DEBUG        = "true"
  }
  volume "data" { name = "gpustack-data" }
}
