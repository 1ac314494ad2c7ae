node "n1" {
  address = "10.0.0.1"
}
variable "replicas" {
  type = integer
}

variable "x" {
  default = var.replicas
}
