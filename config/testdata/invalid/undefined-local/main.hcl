node "n1" {
  address = "10.0.0.1"
}
locals {
  tag = "1.27"
}

service "web" {
  image = "nginx:${local.tga}"
}
