node "n1" {
  address = "10.0.0.1"
}
variable "registry_token" {
  sensitive = true
  default   = "tok123456"
}

service "web" {
  image = "nginx"
  labels = {
    token = var.registry_token
  }
  replicas = -1
}
