project "demo" {
  ingress {
    image = "berth-test/caddy:2.11.9"
  }
}

node "node1" {
  address = "10.0.0.11"
  labels  = { zone = "a", role = "web" }
}

node "node2" {
  address = "10.0.0.12"
  labels  = { zone = "b", role = "web" }
}

node "node3" {
  address = "10.0.0.13"
  labels  = { zone = "c", role = "db" }
}

service "web" {
  image    = "berth-test/echo:v1"
  replicas = 6

  port {
    target    = 8080
    published = 18080
    mode      = "ingress"
  }

  health {
    http = "/healthz"
  }
}

service "api" {
  image = "berth-test/echo:v1"

  port {
    target    = 8080
    published = 18080
    mode      = "ingress"
    path      = "/api"
  }

  port {
    target    = 9090
    published = 19090
  }
}

service "client" {
  image = "berth-test/echo:v1"
  env = {
    WEB = service.web.url
    API = service.api.address
  }
}
