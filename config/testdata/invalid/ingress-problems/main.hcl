project "p" {
  ingress {
    image = ""
    nodes = node.labels
    tls   = "acme"
  }
  ingress {}
}
node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  port {
    target    = 53
    published = 8053
    protocol  = "udp"
    mode      = "ingress"
  }
  port {
    target = 80
    host   = "web.example.com"
    path   = "/api"
  }
  port {
    target  = 80
    mode    = "ingress"
    host_ip = "127.0.0.1"
  }
  port {
    target    = 80
    published = 18080
    mode      = "ingress"
    path      = "api"
  }
  port {
    target    = 80
    published = 18081
    mode      = "mesh"
  }
}
service "api" {
  image = "nginx"
  port {
    target    = 80
    published = 18080
    mode      = "ingress"
    path      = "api"
  }
  port {
    target    = 81
    published = 18080
  }
}
service "ok" {
  image    = "nginx"
  replicas = 4
  port {
    target    = 80
    published = 18080
    mode      = "ingress"
    host      = "ok.example.com"
  }
}
