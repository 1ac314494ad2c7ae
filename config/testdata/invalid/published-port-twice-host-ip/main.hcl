node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  port {
    target    = 80
    published = 443
    host_ip   = "127.0.0.1"
  }
  port {
    target    = 81
    published = 443
  }
  port {
    target    = 82
    published = 444
    host_ip   = "127.0.0.1"
  }
  port {
    target    = 83
    published = 444
    host_ip   = "10.0.0.1"
  }
}
