node "n1" {
  address = "10.0.0.1"
}
variable "replicas" {
  type    = number
  default = "many"
}

variable "ports" {
  type    = list(number)
  default = [80, "http"]
}
