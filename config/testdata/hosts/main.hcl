# Three engines: the local one made explicit, one over TLS, one over ssh.
host "default" {
  docker_host = "unix:///var/run/docker.sock"
}

host "gpu1" {
  docker_host = "tcp://GPU1.example.com:2376"
  tls {
    ca_file   = "./certs/ca.pem"
    cert_file = "certs/cert.pem"
    key_file  = "./certs/key.pem"
  }
}

host "gpu2" {
  docker_host = "ssh://admin@gpu2.example.com:2222"
}

gpustack "main" {
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
}

# The same deployment name, container name, volume and port on other hosts
# do not clash: they are other engines.
gpustack "main2" {
  host           = "gpu1"
  version        = "v2.2.3"
  container_name = "gpustack-main"
  volume "data" { name = "gpustack-data" }
}

gpustack "edge" {
  host    = "gpu2"
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
}
