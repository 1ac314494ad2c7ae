node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  port {
    target    = 80
    published = 70000
  }
  port {
    target = 65536
  }
}
