node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  port {
    target    = 80
    published = 8080
  }
  port {
    target    = 81
    published = 8080
  }
  port {
    target    = 82
    published = 8080
    protocol  = "udp"
  }
}
