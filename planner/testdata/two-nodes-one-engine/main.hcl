project "demo" {}

node "node1" {
  address = "10.0.0.11"
  labels  = { zone = "a", role = "web" }
}

node "node2" {
  address = "10.0.0.12"
  labels  = { zone = "b", role = "web" }
}

# The same server as node1, under the Host alias "web1" of ~/.ssh/config.
node "node1b" {
  address = "web1"
  labels  = { zone = "c", role = "web" }
}

service "web" {
  image    = "berth-test/echo:v1"
  replicas = 3

  port {
    target    = 8080
    published = 8080
  }

  placement {
    spread = node.labels.zone
  }

  health {
    http = "/healthz"
  }
}
