node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "Nginx:latest"
}

service "api" {
  image = "my app:1"
}
