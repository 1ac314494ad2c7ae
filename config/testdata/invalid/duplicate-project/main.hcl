project "shop" {}
project "shop2" {}
node "n1" {
  address = "10.0.0.1"
}
