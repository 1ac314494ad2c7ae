node "n1" {
  address = "10.0.0.1"
}
variable "a" {
  default = "x"
}

variable "b" {
  default = "y"
  validation {
    condition     = var.b != var.a
    error_message = "b must differ from a."
  }
}
