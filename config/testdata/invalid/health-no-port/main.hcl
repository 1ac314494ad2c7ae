node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  health {
    http = "/healthz"
  }
}

service "cache" {
  image = "redis"
  health {
    tcp = true
  }
}
