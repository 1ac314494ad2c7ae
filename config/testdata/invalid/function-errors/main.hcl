node "n1" {
  address = "10.0.0.1"
}
locals {
  n = parseint("x", 10)
}

service "web" {
  image    = join("", 5)
  replicas = local.n
}
