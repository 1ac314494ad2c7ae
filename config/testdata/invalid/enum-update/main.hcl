node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  update {
    order          = "start_first"
    failure_action = "continue"
    parallelism    = 0
  }
}
