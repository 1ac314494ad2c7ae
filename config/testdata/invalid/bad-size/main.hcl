node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  resources {
    memory = "lots"
  }
}

service "api" {
  image = "nginx"
  resources {
    memory = "1k"
    cpus   = 0
  }
}
