node "n1" {
  address = "10.0.0.1"
}

variable "image" {
  default = null
}

service "web" {
  image    = var.image
  replicas = null
  port {
    target = null
  }
  volume {
    source = null
    target = "/data"
  }
}
