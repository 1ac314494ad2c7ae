# Three servers in three zones. The web tier is spread across the zones
# behind published ports; the database is pinned to one node and keeps its
# data in a named volume.

project "shop" {
  ssh {
    user          = "deploy"
    identity_file = "~/.ssh/berth_ed25519"
  }
}

locals {
  zones = ["eu-1a", "eu-1b", "eu-1c"]
}

node "app-1" {
  address = "10.0.1.10"
  labels = {
    zone = local.zones[0]
    role = "app"
  }
}

node "app-2" {
  address = "10.0.2.10"
  labels = {
    zone = local.zones[1]
    role = "app"
  }
}

node "app-3" {
  address  = "10.0.3.10"
  host_key = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
  labels = {
    zone = local.zones[2]
    role = "app"
    disk = "ssd"
  }
}
