node "n1" {
  address       = "10.0.0.1"
  host_key      = "SHA256:abc"
  docker_socket = "docker.sock"
  port          = 65536
  labels        = ["web"]
}
