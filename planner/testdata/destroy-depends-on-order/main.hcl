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

# web depends on api, api on db: destroy removes web first, db last.
service "web" {
  image      = "berth-test/echo:v1"
  replicas   = 2
  depends_on = ["api"]
}

service "api" {
  image      = "berth-test/echo:v1"
  replicas   = 2
  depends_on = ["db"]
}

service "db" {
  image = "postgres:16"

  placement {
    constraint = node.labels.role == "db"
  }
}
