node "n1" {
  address = "10.0.0.1"
}
locals {
  a = 1
}

locals {
  a = 2
}
