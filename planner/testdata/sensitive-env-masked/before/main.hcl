project "demo" {}

node "node1" {
  address = "10.0.0.11"
  labels  = { zone = "a", role = "web" }
}

node "node2" {
  address = "10.0.0.12"
  labels  = { zone = "b", role = "web" }
}

node "node3" {
  address = "10.0.0.13"
  labels  = { zone = "c", role = "db" }
}

variable "api_key" {
  type      = string
  sensitive = true
  default   = "s3cr3t-old-value"
}

service "web" {
  image    = "berth-test/echo:v1"
  replicas = 2

  env = {
    API_KEY = var.api_key
    MODE    = "prod"
  }
}
