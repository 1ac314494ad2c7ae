# Imported by berth import compose from compose.yml.
# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.

project "build" {
}

variable "GIT_SHA" {
  type        = string
  description = "Used by service app"
}

# A placeholder: set the address (and labels) of a real server.
node "node1" {
  address = "node1.example.com"
}

service "app" {
  image = "acme/app:dev"
  build {
    context    = "app"
    dockerfile = "Dockerfile.prod"
    args = {
      GIT_SHA    = var.GIT_SHA
      GO_VERSION = "1.26"
    }
    target = "runtime"
  }
}
