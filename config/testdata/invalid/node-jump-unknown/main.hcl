node "bastion" {
  address = "bastion.example.com"
}

node "web" {
  address = "10.0.0.1"
  jump    = "bastoin"
}

node "api" {
  address = "10.0.0.2"
  jump    = "ops@jump.example.com:99999"
}
