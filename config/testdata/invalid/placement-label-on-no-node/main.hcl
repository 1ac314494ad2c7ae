node "n1" {
  address = "10.0.0.1"
}
node "n2" {
  address = "10.0.0.2"
  labels = {
    zone = "b"
  }
}

service "web" {
  image = "nginx"
  placement {
    constraint = node.labels.role == "web"
  }
}
