service "web" {
  image    = "nginx"
  replicas = 2
}
