node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image   = "nginx"
  restart = "unless_stopped"
  pull    = "sometimes"
}
