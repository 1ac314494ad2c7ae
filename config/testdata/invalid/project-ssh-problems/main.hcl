project "shop" {
  ssh {
    user     = "deploy"
    port     = "ssh"
    password = "x"
  }
  ssh {
    user = "root"
  }
}
node "n1" {
  address = "10.0.0.1"
}
