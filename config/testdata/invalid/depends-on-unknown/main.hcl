node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image      = "nginx"
  depends_on = ["db", "cache"]
}

service "dbb" {
  image = "postgres"
}
