project "My Shop" {}

node "Node_1" {
  address = "10.0.0.1"
}

service "web.app" {
  image = "nginx"
}

variable "1st" {
  default = 1
}
