environment    = "staging"
web_replicas   = 1
image_tag      = "main"
node_addresses = ["stage-1.internal.example.com", "stage-2.internal.example.com"]
