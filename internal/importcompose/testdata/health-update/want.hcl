# Imported by berth import compose from compose.yml.
# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.

project "health-update" {
}

# A placeholder: set the address (and labels) of a real server.
node "node1" {
  address = "node1.example.com"
}

service "api" {
  image   = "acme/api:4"
  restart = "always"
  health {
    cmd          = ["wget", "-qO-", "http://localhost:8080/healthz"]
    interval     = "10s"
    timeout      = "3s"
    retries      = 5
    start_period = "20s"
  }
  update {
    order = "stop-first"
  }
}

service "job" {
  image      = "acme/job:4"
  restart    = "on-failure"
  depends_on = ["api"]
  health {
    cmd = ["sh", "-c", "curl -f http://localhost/ || exit 1"]
  }
}
