# Two application servers; each environment fills in their addresses.

node "node-a" {
  address = var.node_addresses[0]
  labels = {
    env = var.environment
  }
}

node "node-b" {
  address = var.node_addresses[1]
  labels = {
    env = var.environment
  }
}
