# Extra mounts: sources, targets and labels that cannot work.
variable "sock" {
  sensitive = true
  default   = "/var/run/docker.sock"
}

gpustack "a" {
  version = "v0.7.1"
  variant = "cpu"
  volume "data" { name = "a-data" }
  volume "cache" { name = "a-cache" }

  mount "no-source" { target = "/x" }
  mount "no-target" { source = "/x" }
  mount "relative" {
    source = "./models"
    target = "models"
  }
  mount "data" {
    source = "/srv/a"
    target = "/var/lib/gpustack/"
  }
  mount "inside" {
    source = "/srv/b"
    target = "/var/lib/gpustack/models"
  }
  mount "above" {
    source = "/srv/c"
    target = "/var"
  }
  mount "cache" {
    source = "/srv/d"
    target = "/var/lib/gpustack-cache/hf"
  }
  mount "twice" {
    source = "/srv/e"
    target = "/mnt/e"
  }
  mount "twice" {
    source = "/srv/f"
    target = "/mnt/f"
  }
  mount "same-target" {
    source = "/srv/g"
    target = "/mnt/e/"
  }
  mount "-bad" {
    source = "/srv/h"
    target = "/mnt/h"
  }
  mount "shared" {
    source = "a-data"
    target = "/mnt/data"
  }
  mount "secret" {
    source    = var.sock
    target    = "/var/run/docker.sock"
    read_only = "maybe"
  }
}
