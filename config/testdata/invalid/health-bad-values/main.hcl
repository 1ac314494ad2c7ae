node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  health {
    cmd      = ["CMD-SHELL", "curl -f localhost"]
    retries  = 0
    interval = "0s"
  }
}

service "api" {
  image = "nginx"
  port {
    target = 80
  }
  health {
    http = "healthz"
  }
}
