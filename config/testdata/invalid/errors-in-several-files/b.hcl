service "api" {
  image   = "nginx"
  restart = "sometimes"
}
