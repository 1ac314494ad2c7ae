node "n1" {
  address = "10.0.0.1"
}
variable "image_tag" {
  default = "1.27"
}

service "web" {
  image = "nginx:${var.imagetag}"
}
