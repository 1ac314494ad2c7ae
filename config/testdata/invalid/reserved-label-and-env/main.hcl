node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  labels = {
    "berth.project" = "other"
  }
  env = {
    TOKEN = "a"
    "A=B" = "c"
  }
  sensitive_env = {
    TOKEN = "b"
  }
}
