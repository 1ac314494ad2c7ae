project "demo" {}

# node3 is gone from the configuration and cannot be reached: the plan says
# its containers could not be removed; web's replica there is created anew
# (as before this feature: the node is no longer part of the project).

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
