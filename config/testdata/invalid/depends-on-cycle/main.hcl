node "n1" {
  address = "10.0.0.1"
}
service "a" {
  image      = "nginx"
  depends_on = ["b"]
}

service "b" {
  image      = "nginx"
  depends_on = ["c"]
}

service "c" {
  image      = "nginx"
  depends_on = ["a"]
}

service "d" {
  image      = "nginx"
  depends_on = ["a"]
}
