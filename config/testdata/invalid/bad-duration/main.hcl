node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image             = "nginx"
  stop_grace_period = "10 seconds"
  port {
    target = 80
  }
  health {
    http     = "/"
    interval = "5x"
    timeout  = 3
  }
  update {
    monitor = "-5s"
    delay   = "1h2"
  }
}
