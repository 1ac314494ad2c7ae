node "n1" {
  address = "10.0.0.1"
}
node "n2" {
  address = "10.0.0.2"
}

service "web" {
  image    = "nginx"
  replicas = 5
  placement {
    max_per_node = 2
  }
}
