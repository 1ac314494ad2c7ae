node "n1" {
  address = "10.0.0.1"
}
locals {
  a = local.b
  b = "${local.c}-x"
  c = local.a
  d = local.d
  e = upper(local.a)
}

service "web" {
  image = local.e
}
