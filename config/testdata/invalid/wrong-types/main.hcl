node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image      = ["nginx"]
  env        = ["A=1"]
  depends_on = "db"
  labels = {
    a = null
  }
}
