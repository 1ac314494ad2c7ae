# One configuration, two environments: the differences live in
# staging.vars.hcl and production.vars.hcl.
#
#   berth plan -var-file staging.vars.hcl
#   BERTH_VAR_db_password=... berth plan -var-file production.vars.hcl

variable "environment" {
  type        = string
  default     = "staging"
  description = "Which environment this is; names the project."

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be \"staging\" or \"production\"."
  }
}

variable "node_addresses" {
  type        = list(string)
  description = "The addresses of the two application servers."
  default     = ["stage-1.internal.example.com", "stage-2.internal.example.com"]

  validation {
    condition     = length(var.node_addresses) == 2
    error_message = "node_addresses must list exactly two addresses."
  }
}

variable "web_replicas" {
  type    = number
  default = 1

  validation {
    condition     = var.web_replicas >= 1 && var.web_replicas <= 20
    error_message = "web_replicas must be between 1 and 20."
  }
}

variable "image_tag" {
  type    = string
  default = "latest"
}

variable "db_password" {
  type        = string
  sensitive   = true
  description = "Set it with BERTH_VAR_db_password; never commit it."
}

locals {
  registry = "registry.example.com/acme"
  common_labels = {
    "com.example.environment" = var.environment
    "com.example.team"        = "payments"
  }
}

project "payments" {
  ssh {
    user = "deploy"
  }
}
