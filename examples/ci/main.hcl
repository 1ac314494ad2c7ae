project "ci-example" {
  ssh {
    user          = "deploy"
    identity_file = "~/.ssh/berth_ci"
    known_hosts   = "~/.ssh/known_hosts"
  }
}

node "app-1" {
  address = "app-1.example.com"
}

service "web" {
  image = "nginx:1.27"

  port {
    target    = 80
    published = 8080
  }
}
