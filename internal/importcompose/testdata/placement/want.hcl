# Imported by berth import compose from compose.yml.
# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.

project "placement" {
}

# A placeholder: set the address (and labels) of a real server.
node "node1" {
  address = "node1.example.com"
  labels = {
    role = "edge"
    zone = "a"
  }
}

# A placeholder: set the address (and labels) of a real server.
node "node2" {
  address = "node2.example.com"
  labels = {
    zone = "b"
  }
}

service "edge" {
  image    = "caddy:2"
  replicas = 2
  port {
    target    = 80
    published = 80
  }
  port {
    target    = 81
    published = 81
  }
  placement {
    constraint = node.labels.role == "edge" && lookup(node.labels, "com.example.tier", "") != "batch"
    spread     = node.labels.zone
  }
}
