service "api" {
  image    = "${local.registry}/api:${var.image_tag}"
  replicas = var.web_replicas
  labels   = local.common_labels

  env = {
    APP_ENV      = var.environment
    DATABASE_URL = "postgres://api:${var.db_password}@10.0.0.5:5432/payments"
    LOG_FORMAT   = var.environment == "production" ? "json" : "text"
  }

  port {
    target = 8000
  }

  health {
    http = "/health"
  }

  resources {
    memory = var.environment == "production" ? "1GiB" : "256MiB"
  }

  update {
    order          = "start-first"
    failure_action = "rollback"
  }
}

service "jobs" {
  image   = "${local.registry}/api:${var.image_tag}"
  command = ["python", "-m", "payments.jobs"]
  labels  = local.common_labels

  env = {
    APP_ENV = var.environment
  }
  sensitive_env = {
    DATABASE_PASSWORD = var.db_password
  }

  restart           = "on-failure"
  stop_grace_period = "1m"
}
