package config

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// fuzzSeeds returns the examples and the invalid cases, each directory's
// configuration files joined into one input.
func fuzzSeeds(t testing.TB) [][]byte {
	var dirs []string
	for _, pattern := range []string{"../examples/*", "testdata/invalid/*"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, m...)
	}
	sort.Strings(dirs)
	var seeds [][]byte
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
		var b strings.Builder
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(src)
			b.WriteByte('\n')
		}
		if b.Len() > 0 {
			seeds = append(seeds, []byte(b.String()))
		}
	}
	return seeds
}

// FuzzLoad feeds arbitrary text to the parser and validator as main.hcl:
// Load must not panic, and every error must point at a place in the file.
//
//	go test -fuzz=FuzzLoad -parallel 1 -fuzztime=10m ./config/
//
// Crashers land in testdata/fuzz/FuzzLoad and run with every go test.
func FuzzLoad(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	for _, s := range extraSeeds {
		f.Add([]byte(s))
	}
	recoverPanics = false
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, in := range []Inputs{{}, {AllowUnset: true}} {
			cfg, diags := Load(dir, in)
			if cfg == nil {
				t.Fatalf("nil Config: %s", renderAll(diags))
			}
			for _, d := range diags {
				if d.Severity != hcl.DiagError {
					continue
				}
				if d.Subject == nil || d.Subject.Filename == "" {
					t.Errorf("error without a source range: %s: %s", d.Summary, d.Detail)
				}
			}
			if !diags.HasErrors() {
				checkResolved(t, cfg)
			}
		}
	})
}

// checkResolved checks what a valid Config promises the planner.
func checkResolved(t *testing.T, cfg *Config) {
	t.Helper()
	if !ValidName(cfg.Project.Name) {
		t.Errorf("project name %q", cfg.Project.Name)
	}
	for _, n := range cfg.Nodes {
		if n.Address == "" || n.DockerSocket == "" || n.Labels == nil {
			t.Errorf("node %+v", n)
		}
	}
	for _, s := range cfg.Services {
		if s.Replicas < 0 || s.Update.Parallelism < 1 || s.Restart == "" || s.Pull == "" || s.Env == nil || s.Labels == nil {
			t.Errorf("service %+v", s)
		}
		for _, p := range s.Ports {
			if p.Target < 1 || p.Target > 65535 || p.Published < 0 || p.Published > 65535 || p.Protocol == "" {
				t.Errorf("service %s port %+v", s.Name, p)
			}
		}
		if h := s.Health; h != nil && (h.HTTP != "" || h.TCP) && h.Port == 0 {
			t.Errorf("service %s: health check without a port", s.Name)
		}
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s: no image", s.Name)
		}
	}
}

// extraSeeds reach what the examples and invalid cases do not: type
// constraints with optional attributes, for expressions, splats, heredocs,
// try and can, and jump chains.
var extraSeeds = []string{
	`variable "o" {
  type    = object({ a = optional(list(object({ b = optional(string, "x") })), []), c = optional(map(number)) })
  default = { a = [{}, { b = "y" }] }
}
variable "s" {
  type      = set(string)
  default   = ["a", "b"]
  sensitive = true
}
locals {
  names = [for x in var.o.a : upper(x.b) if x.b != ""]
  m     = { for k, v in local.env : k => "${v}-${length(var.s)}" }
  env   = merge({ Z = "1" }, try(var.o.c, {}))
  all   = var.o.a[*].b
  text  = <<-EOT
    hello ${join(",", local.names)}
  EOT
}
node "a" {
  address = "a.example.com"
  jump    = "b"
  labels  = { for i, n in local.names : "l${i}" => n }
}
node "b" {
  address = "10.0.0.2"
  jump    = "ops@[2001:db8::1]:2222"
}
service "s" {
  image         = can(var.o.zzz) ? "a" : "b:${length(local.all)}"
  env           = local.m
  sensitive_env = { for v in var.s : upper(v) => v }
  command       = split(" ", trimspace(local.text))
  placement {
    constraint = can(regex("^a", node.name)) && try(node.labels.l0, "") != "" && node.cpus >= 1
    spread     = lookup(node.labels, "zone", node.name)
  }
}
`,
	`service "x" {
  image = "a"
  port {
    target    = 80
    published = 80
  }
  health {
    tcp  = true
    port = 81
  }
  depends_on = ["y"]
}
service "y" {
  build {
    context = "."
    args    = { A = 1 }
  }
  volume {
    source    = "/srv/y"
    target    = "/y"
    read_only = true
  }
}
node "n" {
  address = "local"
}
`,
}
