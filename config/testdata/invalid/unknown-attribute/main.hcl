node "n1" {
  address = "10.0.0.1"
}
service "web" {
  imag     = "nginx"
  replicas = 1
}
