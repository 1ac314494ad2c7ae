project "demo" {}

variable "db_password" {
  type      = string
  default   = "hunter2-secret"
  sensitive = true
}

node "node1" {
  address = "10.0.0.11"
  labels  = { role = "db" }
}

node "node2" {
  address = "10.0.0.12"
  labels  = { role = "web" }
}

node "node3" {
  address         = "203.0.113.13"
  private_address = "10.0.0.13"
  labels          = { role = "spare" }
}

service "db" {
  image = "postgres:16"
  port {
    target    = 5432
    published = 5432
  }
  placement {
    constraint = node.labels.role == "db"
  }
}

service "web" {
  image = "berth-test/echo:v1"
  env = {
    DB   = service.db.address
    MODE = "prod"
  }
  sensitive_env = {
    DSN = "postgres://app:${var.db_password}@${service.db.address}/app"
  }
  port {
    target    = 8080
    published = 8080
  }
  placement {
    constraint = node.labels.role == "web"
  }
}
