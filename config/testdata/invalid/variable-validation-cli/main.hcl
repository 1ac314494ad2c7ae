node "n1" {
  address = "10.0.0.1"
}
variable "port" {
  type = number
  validation {
    condition     = var.port >= 1024
    error_message = "Use an unprivileged port."
  }
}

service "web" {
  image = "nginx"
  port {
    target    = 80
    published = var.port
  }
}
