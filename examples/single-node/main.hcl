# One machine, the local Docker engine: no SSH involved.
# Try it with: berth plan examples/single-node

project "hello" {}

node "local" {
  address = "local"
}

service "web" {
  image    = "nginx:1.27-alpine"
  replicas = 1

  port {
    target    = 80
    published = 8080
  }

  health {
    http     = "/"
    interval = "2s"
  }
}

service "worker" {
  image   = "busybox:1.36"
  command = ["sh", "-c", "while true; do date; sleep 30; done"]

  env = {
    LOG_LEVEL = "info"
  }

  resources {
    cpus   = 0.25
    memory = "64MiB"
  }
}
