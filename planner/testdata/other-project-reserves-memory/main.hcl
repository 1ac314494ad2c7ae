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

# Another berth project reserves all of node1's memory: the replicas go to
# node2 and node3. Its stopped container on node2 reserves nothing.
service "api" {
  image    = "berth-test/echo:v1"
  replicas = 2

  resources {
    memory = "1GiB"
  }
}
