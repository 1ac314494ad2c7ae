node "n1" {
  address = "10.0.0.1"
}
variable "replicas" {
  type    = number
  default = 0
  validation {
    condition     = var.replicas > 0
    error_message = "replicas must be positive."
  }
}

service "web" {
  image    = "nginx"
  replicas = var.replicas
}
