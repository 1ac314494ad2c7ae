node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  port {
    target  = 80
    publish = 8080
  }
}
