project "demo" {}

node "node1" {
  address = "10.0.0.11"
}

node "node2" {
  address         = "203.0.113.12"
  private_address = "10.0.0.12"
}

service "api" {
  image    = "berth-test/echo:v1"
  replicas = 2
  port {
    target = 8080
  }
}

service "web" {
  image   = "berth-test/echo:v1"
  command = ["/echo", "-upstream", service.api.url]
  env = {
    API_ENDPOINTS = join(",", service.api.endpoints)
  }
  labels = { upstream = service.api.address }
  port {
    target    = 80
    published = 8080
  }
}
