node "n1" {
  address = "10.0.0.1"
}
variable "zone" {
  default = "a"
}

locals {
  role = "web"
}

service "web" {
  image = "nginx"
  placement {
    constraint = node.labels.zone == var.zone && node.labels.role == local.role
    spread     = zone
  }
}
