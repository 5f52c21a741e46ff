# test-var: zeta_port=9090
variable "zeta_port" {}
catalog { file = "../releases.json" }
