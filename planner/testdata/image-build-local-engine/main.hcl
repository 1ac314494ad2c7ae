project "demo" {}

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

# node1 is the local engine itself: the build puts the image there; node2 and
# node3 get it sent.
service "web" {
  replicas = 3

  build {
    context = "./app"
  }

  placement {
    spread = node.labels.zone
  }
}

