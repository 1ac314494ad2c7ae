# The ingress runs on the web nodes only; api's replica runs on node3, which
# has no proxy: service.api.address must name an ingress node (node1), where
# the proxy reaches api, not node3, where nothing listens on 18080.
project "demo" {
  ingress {
    image = "berth-test/echo:v1"
    nodes = node.labels.role == "web"
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

service "api" {
  image = "berth-test/echo:v1"

  port {
    target    = 8080
    published = 18080
    mode      = "ingress"
  }

  placement {
    constraint = node.labels.role == "db"
  }
}

service "client" {
  image = "berth-test/echo:v1"
  env = {
    API = service.api.address
  }
}
