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


service "db" {
  image    = "postgres:16"
  replicas = 2

  placement {
    constraint = node.name != "node1"
  }

  volume {
    source = "pgdata"
    target = "/var/lib/postgresql/data"
  }
}
