node "a" {
  address = "10.0.0.1"
  jump    = "b"
}

node "b" {
  address = "10.0.0.2"
  jump    = "a"
}

node "c" {
  address = "10.0.0.3"
  jump    = "c"
}

node "d" {
  address = "local"
}

node "e" {
  address = "10.0.0.5"
  jump    = "d"
}
