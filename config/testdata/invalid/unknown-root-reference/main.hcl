node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx:${tag}"
  env = {
    X = sevrice.db.image
    Y = var
  }
}
