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

# The container was removed by hand; its volume stays on node3, which the
# constraint now rules out: the replica goes to node1 and the plan says the
# data stays behind.
service "db" {
  image    = "postgres:16"
  replicas = 1

  placement {
    constraint = node.labels.role == "web"
  }

  volume {
    source = "pgdata"
    target = "/var/lib/postgresql/data"
  }
}
