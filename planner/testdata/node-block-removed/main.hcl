project "demo" {}

# node3's block is gone, but the last apply recorded it: the plan moves web's
# replica off it and removes worker's container there (its service was
# removed too). The other project's container and the volume stay.

node "node1" {
  address = "10.0.0.11"
  labels  = { zone = "a", role = "web" }
}

node "node2" {
  address = "10.0.0.12"
  labels  = { zone = "b", role = "web" }
}

service "web" {
  image    = "berth-test/echo:v1"
  replicas = 3

  placement {
    max_per_node = 2
  }
}
