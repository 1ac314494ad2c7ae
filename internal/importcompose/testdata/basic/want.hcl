# Imported by berth import compose from compose.yml.
# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.

project "basic" {
}

# A placeholder: set the address (and labels) of a real server.
node "node1" {
  address = "node1.example.com"
}

service "api" {
  image = "ghcr.io/acme/api:2.1"
  pull  = "always"
  resources {
    cpus   = 0.5
    memory = "256MiB"
  }
}

service "web" {
  image      = "nginx:1.27"
  command    = ["nginx", "-g", "daemon off;"]
  entrypoint = ["/docker-entrypoint.sh"]
  env = {
    MODE = "production"
  }
  labels = {
    "com.example.team" = "web"
  }
  restart           = "unless-stopped"
  stop_grace_period = "30s"
  depends_on        = ["api"]
  user              = "101:101"
  working_dir       = "/srv"
  hostname          = "web"
  extra_hosts       = ["db.internal:10.0.0.5"]
  port {
    target    = 80
    published = 8080
  }
  port {
    target    = 443
    published = 8443
    host_ip   = "127.0.0.1"
  }
  volume {
    source    = "static"
    target    = "/srv/static"
    read_only = true
  }
  volume {
    source    = "/etc/ssl/certs"
    target    = "/etc/ssl/certs"
    read_only = true
  }
}
