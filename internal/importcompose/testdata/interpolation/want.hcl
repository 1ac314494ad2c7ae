# Imported by berth import compose from compose.yml.
# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.

project "shop" {
}

variable "API_TOKEN" {
  type        = string
  description = "Used by service web; set in .env (value not imported)"
  sensitive   = true
}

variable "DB_PASSWORD" {
  type        = string
  description = "Used by service db, service web; set in .env (value not imported)"
  sensitive   = true
}

variable "LOG_LEVEL" {
  type        = string
  description = "Used by service web"
  default     = "info"
}

variable "WEB_REPLICAS" {
  type        = number
  description = "Used by service web"
  default     = 3
}

variable "WEB_TAG" {
  type        = string
  description = "Used by service web; set in .env (value not imported)"
  default     = "latest"
}

# A placeholder: set the address (and labels) of a real server.
node "node1" {
  address = "node1.example.com"
}

# A placeholder: set the address (and labels) of a real server.
node "node2" {
  address = "node2.example.com"
}

# A placeholder: set the address (and labels) of a real server.
node "node3" {
  address = "node3.example.com"
}

service "db" {
  image = "postgres:16"
  env = {
    POSTGRES_USER = "app"
  }
  sensitive_env = {
    POSTGRES_PASSWORD = var.DB_PASSWORD
  }
}

service "web" {
  image    = "ghcr.io/acme/web:${var.WEB_TAG}"
  replicas = var.WEB_REPLICAS
  env = {
    DATABASE_URL = "postgres://app:${var.DB_PASSWORD}@db:5432/app"
    LOG_LEVEL    = var.LOG_LEVEL
    PRICE        = "$5"
  }
  sensitive_env = {
    API_TOKEN = var.API_TOKEN
  }
  port {
    target    = 8080
    published = 8080
  }
}
