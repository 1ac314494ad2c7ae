environment    = "production"
web_replicas   = 2
image_tag      = "v1.8.2"
node_addresses = ["pay-1.prod.example.com", "pay-2.prod.example.com"]
