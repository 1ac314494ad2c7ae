project "shop" {
  ingress {}
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

service "shop" {
  image = "nginx:1.27"
  port {
    target    = 80
    published = 8080
    mode      = "ingress"
    host      = "shop.example.com"
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
