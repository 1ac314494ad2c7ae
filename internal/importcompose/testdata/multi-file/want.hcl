# Imported by berth import compose from compose.yml, compose.prod.yml.
# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.

project "multi-file" {
}

# A placeholder: set the address (and labels) of a real server.
node "node1" {
  address = "node1.example.com"
}

service "web" {
  image    = "nginx:1.27"
  replicas = 3
}

service "worker" {
  image = "acme/worker:1"
  env = {
    QUEUE = "prod"
  }
}
