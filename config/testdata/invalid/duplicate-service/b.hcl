# the same name again
service "web" {
  image = "httpd"
}
