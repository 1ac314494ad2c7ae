project "demo" {}

node "node1" {
  address = "10.0.0.11"
}

node "node2" {
  address = "10.0.0.12"
}

node "node3" {
  address = "10.0.0.13"
}

service "api" {
  image    = "berth-test/echo:v1"
  replicas = 2
  port {
    target    = 8080
    published = 8081
  }
  placement {
    constraint = node.name != "node3"
  }
}

service "web" {
  image = "berth-test/echo:v1"
  env = {
    API     = service.api.address
    API_ALL = join(",", service.api.endpoints)
  }
  placement {
    constraint = node.name == "node3"
  }
}
