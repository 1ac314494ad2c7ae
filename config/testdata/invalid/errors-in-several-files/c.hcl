locals {
  x = var.missing
}
