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

# Another berth project reserves 2 GiB on node2: the second replica fits
# nowhere, and the error says so for node2.
service "big" {
  image    = "berth-test/echo:v1"
  replicas = 2

  placement {
    constraint = node.labels.role == "web"
  }

  resources {
    memory = "3GiB"
  }
}
