node "n1" {
  address = "deploy@10.0.0.1"
}

node "n2" {
  address = "web.example.com:2222"
}

node "n3" {
  address = "ssh://web.example.com"
}

node "n4" {
  address = "not a host"
  port    = 0
}
