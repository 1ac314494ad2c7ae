package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSwarmBlock(t *testing.T) {
	dir := t.TempDir()
	src := `project "shop" {
  swarm {
    managers = ["node2", "node1"]
  }
}
node "node1" { address = "10.0.0.1" }
node "node2" { address = "10.0.0.2" }
service "web" {
  image    = "nginx:1.27"
  replicas = 2
  port {
    target    = 80
    published = 8080
  }
  health {
    cmd = ["true"]
  }
  update {
    order          = "stop-first"
    failure_action = "pause"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := Load(dir, Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	sw := cfg.Project.Swarm
	if sw == nil || !slices.Equal(sw.Managers, []string{"node2", "node1"}) {
		t.Fatalf("Swarm = %+v, want managers node2, node1", sw)
	}
	if len(sw.ManagerRanges) != 2 || sw.ManagerRanges[0].Start.Line != 3 {
		t.Errorf("ManagerRanges = %v", sw.ManagerRanges)
	}
}

func TestSwarmPathMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"build", "build", true},
		{"build", "build.context", false},
		{"port[].host_ip", "port[0].host_ip", true},
		{"port[].host_ip", "port[12].host_ip", true},
		{"port[].host_ip", "port[0].target", false},
		{"port[].host_ip", "port[0]", false},
	} {
		if got := swarmPathMatch(c.pattern, c.path); got != c.want {
			t.Errorf("swarmPathMatch(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}
