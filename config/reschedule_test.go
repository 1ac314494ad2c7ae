package config

import (
	"strings"
	"testing"
)

func TestUpdateReschedule(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": `
node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  update {
    reschedule = true
  }
}
service "db" {
  image = "postgres:16"
}
`})
	cfg, diags := Load(dir, Inputs{})
	if diags.HasErrors() {
		t.Fatal(renderAll(diags))
	}
	if !cfg.Service("web").Update.Reschedule || cfg.Service("db").Update.Reschedule {
		t.Errorf("reschedule: web %v, db %v", cfg.Service("web").Update.Reschedule, cfg.Service("db").Update.Reschedule)
	}

	dir = writeConfig(t, map[string]string{"main.hcl": `
node "n1" {
  address = "10.0.0.1"
}
service "web" {
  image = "nginx"
  update {
    reschedule = "yes"
  }
}
`})
	if _, diags := Load(dir, Inputs{}); !diags.HasErrors() || !strings.Contains(renderAll(diags), "a bool is required") {
		t.Errorf("reschedule = \"yes\": %s", renderAll(diags))
	}
}
