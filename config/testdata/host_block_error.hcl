host "gpu1" {
  docker_host = "ssh://admin@gpu1"
}

host "gpu1" {
  docker_host = "ssh://admin@other"
}

host "again" {
  docker_host = "ssh://admin@GPU1"
}

host "Bad Name" {
  docker_host = "unix:///run/docker.sock"
}

host "noaddr" {
}

host "ftp" {
  docker_host = "ftp://gpu1"
}

host "relative" {
  docker_host = "unix://var/run/docker.sock"
}

host "noport" {
  docker_host = "tcp://gpu1"
}

host "password" {
  docker_host = "ssh://admin:secret@gpu4"
}

host "sshtls" {
  docker_host = "ssh://admin@gpu5"
  tls {
    ca_file = "./hosts/certs/ca.pem"
  }
}

host "tcptls" {
  docker_host = "tcp://gpu6:2376"
  tls {
    cert_file = "./hosts/certs/cert.pem"
  }
}

host "missingfile" {
  docker_host = "tcp://gpu7:2376"
  tls {
    ca_file   = "./hosts/certs/nope.pem"
    cert_file = "./hosts/certs/cert.pem"
    key_file  = "./hosts"
  }
}

gpustack "main" {
  host    = 3
  version = "v2.2.3"
  volume "data" { name = "gpustack-data" }
}
