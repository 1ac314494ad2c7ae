package config

import (
	"strings"
	"testing"
)

func TestNodeDrain(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": `
variable "maintenance" {
  type    = bool
  default = true
}
node "n1" {
  address = "10.0.0.1"
  drain   = var.maintenance
}
node "n2" {
  address = "10.0.0.2"
}
`})
	cfg, diags := Load(dir, Inputs{})
	if diags.HasErrors() {
		t.Fatal(renderAll(diags))
	}
	if !cfg.Nodes[0].Drain || cfg.Nodes[1].Drain {
		t.Errorf("drain: n1 %v, n2 %v", cfg.Nodes[0].Drain, cfg.Nodes[1].Drain)
	}

	dir = writeConfig(t, map[string]string{"main.hcl": `
node "n1" {
  address = "10.0.0.1"
  drain   = "soon"
}
`})
	if _, diags := Load(dir, Inputs{}); !diags.HasErrors() || !strings.Contains(renderAll(diags), "a bool is required") {
		t.Errorf("drain = \"soon\": %s", renderAll(diags))
	}
}
