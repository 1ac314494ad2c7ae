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

# destroy removed both containers and kept their volumes (on node2 and
# node3): each replica comes back to the node holding its data, not to the
# least loaded nodes (node1, node2).
service "db" {
  image    = "postgres:16"
  replicas = 2

  volume {
    source = "pgdata"
    target = "/var/lib/postgresql/data"
  }
}
