node "n1" {
  address = "10.0.0.1"
}
service "db" {
  image = "postgres"
  volume {
    source = "./data"
    target = "/var/lib/postgresql/data"
  }
  volume {
    source = "pgdata"
    target = "/var/lib/postgresql/data/"
  }
  volume {
    source = "bad name!"
    target = "relative/path"
  }
  volume {
    target = "/x"
  }
}
