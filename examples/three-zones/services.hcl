service "db" {
  image = "postgres:16"

  env = {
    POSTGRES_DB   = "shop"
    POSTGRES_USER = "shop"
  }
  sensitive_env = {
    POSTGRES_PASSWORD = "change-me-in-production"
  }

  placement {
    constraint = node.name == "app-3"
  }

  volume {
    source = "shop-pgdata"
    target = "/var/lib/postgresql/data"
  }

  port {
    target    = 5432
    published = 5432
    host_ip   = "10.0.3.10"
  }

  health {
    cmd          = ["pg_isready", "-U", "shop"]
    interval     = "5s"
    timeout      = "3s"
    retries      = 5
    start_period = "30s"
  }

  update {
    order = "stop-first"
  }

  stop_grace_period = "30s"
}

service "web" {
  image    = "ghcr.io/example/shop-web:2.4.1"
  replicas = 3

  # service.db.address is "10.0.3.10:5432": the private_address of db's node
  # (by default its address) and db's published port. The reference makes
  # web start after db, and a plan that moves db replaces web with the new
  # address.
  env = {
    DATABASE_ADDRESS = service.db.address
    DATABASE_NAME    = "shop"
  }

  port {
    target    = 8080
    published = 80
  }

  placement {
    constraint   = node.labels.role == "app"
    spread       = node.labels.zone
    max_per_node = 1
  }

  resources {
    cpus   = 0.5
    memory = "256MiB"
  }

  health {
    http         = "/healthz"
    interval     = "2s"
    timeout      = "1s"
    start_period = "5s"
  }

  update {
    parallelism    = 1
    order          = "stop-first"
    failure_action = "rollback"
    monitor        = "10s"
  }
}
