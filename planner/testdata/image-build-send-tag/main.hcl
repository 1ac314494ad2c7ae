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

# Built on the local engine (not there yet): built, then sent to every node.
service "web" {
  replicas = 3

  build {
    context = "./app"
  }

  placement {
    spread = node.labels.zone
  }
}

# On the local engine: sent to node1, which lacks it; node2 has it; node3
# holds the same image ID as app:old, so it is only tagged.
service "api" {
  image    = "app:1"
  replicas = 3

  placement {
    spread = node.labels.zone
  }
}
