node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  placement {
    max_per_node = 1
  }
  placement {
    max_per_node = 2
  }
}
