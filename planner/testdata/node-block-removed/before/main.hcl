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

service "web" {
  image    = "berth-test/echo:v1"
  replicas = 3

  placement {
    max_per_node = 2
  }
}

service "worker" {
  image    = "berth-test/echo:v1"
  replicas = 1

  placement {
    constraint = node.labels.role == "db"
  }
}
