# Imported by berth import compose from stack.yml.
# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.

project "swarm-stack" {
}

# A placeholder: set the address (and labels) of a real server.
node "cache-host" {
  address = "cache-host.example.com"
  labels = {
    rack = "a"
    zone = "a"
  }
}

# A placeholder: set the address (and labels) of a real server.
node "node2" {
  address = "node2.example.com"
  labels = {
    rack = "b"
  }
}

# A placeholder: set the address (and labels) of a real server.
node "node3" {
  address = "node3.example.com"
}

# A placeholder: set the address (and labels) of a real server.
node "node4" {
  address = "node4.example.com"
}

service "app" {
  image    = "registry.example.com/app:3"
  replicas = 4
  restart  = "on-failure"
  port {
    target    = 80
    published = 80
    mode      = "ingress"
  }
  placement {
    constraint   = node.labels.zone == "a" && node.arch == "amd64"
    spread       = node.labels.rack
    max_per_node = 2
  }
  resources {
    cpus   = 1.5
    memory = "512MiB"
  }
  update {
    parallelism    = 2
    order          = "start-first"
    failure_action = "rollback"
    monitor        = "30s"
    delay          = "10s"
  }
}

service "cache" {
  image = "redis:7"
  placement {
    constraint   = node.name == "cache-host"
    max_per_node = 1
  }
}
