node "n1" {
  address = "10.0.0.1"
}
service "web" {
  build {
    dockerfile = "Dockerfile.prod"
    args = {
      VERSION = ["1"]
    }
  }
}
