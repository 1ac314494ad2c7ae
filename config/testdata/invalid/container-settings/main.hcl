node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image       = "nginx"
  working_dir = "app"
  hostname    = "web_01!"
  user        = ""
  extra_hosts = ["db=10.0.0.5", "cache:not-an-ip"]
}
