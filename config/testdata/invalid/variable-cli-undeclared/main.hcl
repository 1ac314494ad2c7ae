node "n1" {
  address = "10.0.0.1"
}
variable "tag" {
  default = "1"
}
