# Quickstart: one machine (the local Docker engine) and a service whose image
# berth builds from ./app, a tiny Go HTTP server. No registry is involved:
# the image is built on this machine and runs here.
#
# From the repository's root:
#
#   CGO_ENABLED=0 go build -trimpath -buildvcs=false -o examples/quickstart/app/server ./examples/quickstart/app
#   go run ./cmd/berth apply -auto-approve examples/quickstart
#
# The first line builds the server binary the image copies (FROM scratch:
# nothing to pull). berth tags the image with a hash of the build context,
# so applying again with the same binary changes nothing, and a new binary
# gives a new tag and a rolling replace.

project "quickstart" {}

node "local" {
  address = "local"
}

service "app" {
  build {
    context = "./app"
  }

  port {
    target    = 8080
    published = 8080
  }

  health {
    http     = "/healthz"
    interval = "1s"
  }
}
