# Imported by berth import compose from compose.yml.
# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.

project "secrets" {
}

variable "PGDATA" {
  type        = string
  description = "Used by service db"
}

variable "POSTGRES_PASSWORD" {
  type        = string
  description = "Used by service db"
  sensitive   = true
}

variable "api_key" {
  type        = string
  description = "Used by service db (Compose secret api_key)"
  sensitive   = true
}

variable "db_password" {
  type        = string
  description = "Used by service db (Compose secret db_password)"
  sensitive   = true
}

# A placeholder: set the address (and labels) of a real server.
node "node1" {
  address = "node1.example.com"
}

service "db" {
  image = "postgres:16"
  env = {
    PGDATA = var.PGDATA
  }
  sensitive_env = {
    API_KEY           = var.api_key
    DB_PASSWORD       = var.db_password
    POSTGRES_PASSWORD = var.POSTGRES_PASSWORD
  }
}
