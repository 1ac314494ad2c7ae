project "shop" {
  swarm {
    managers = ["node1", "nodex", "node1"]
  }
}

node "node1" {
  address = "10.0.0.1"
}

node "node2" {
  address = "10.0.0.2"
}

service "db" {
  image = "postgres:16"
}

service "web" {
  image = "nginx:1.27"
  pull  = "always"
  env = {
    DB = service.db.address
  }
  port {
    target  = 80
    host_ip = "127.0.0.1"
  }
  health {
    http = "/healthz"
  }
}

service "api" {
  build {
    context = "."
  }
  health {
    cmd  = ["true"]
    port = 8080
  }
}
