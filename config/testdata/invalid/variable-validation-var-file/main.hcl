node "n1" {
  address = "10.0.0.1"
}
variable "env" {
  type = string
  validation {
    condition     = contains(["staging", "production"], var.env)
    error_message = "env must be staging or production."
  }
}

service "web" {
  image = "nginx"
  env = {
    ENV = var.env
  }
}
