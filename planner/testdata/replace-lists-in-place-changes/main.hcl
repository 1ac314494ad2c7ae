project "demo" {}

node "node1" {
  address = "10.0.0.11"
}

node "node2" {
  address = "10.0.0.12"
}

service "web" {
  image    = "berth-test/echo:v1"
  replicas = 2

  port {
    target    = 8080
    published = 8080
  }

  env = {
    LOG = "debug"
  }

  resources {
    memory = "256MiB"
  }
}
