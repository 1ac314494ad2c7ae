node "n1" {
  address = "10.0.0.1"
}

node "n1" {
  address = "10.0.0.2"
}
