node "n1" {
  address = "10.0.0.1"
}
variable "replicas" {
  type    = number
  default = 1
}

service "web" {
  image    = "nginx"
  replicas = var.replicas
}
