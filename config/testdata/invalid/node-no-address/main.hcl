node "n1" {
  user = "deploy"
}

node "n2" {
  address = ""
}

node "n3" {
  address = null
}
