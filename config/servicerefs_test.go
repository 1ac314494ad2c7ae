package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

const refsNodes = `
node "node1" {
  address         = "10.0.0.1"
  private_address = "192.168.0.1"
}
node "node2" {
  address = "10.0.0.2"
}
node "laptop" {
  address = "local"
}
`

func TestPrivateAddress(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": refsNodes})
	cfg, diags := Load(dir, Inputs{})
	if diags.HasErrors() {
		t.Fatal(renderAll(diags))
	}
	for name, want := range map[string]string{"node1": "192.168.0.1", "node2": "10.0.0.2", "laptop": "127.0.0.1"} {
		if got := cfg.Node(name).PrivateAddress; got != want {
			t.Errorf("%s: private address %q, want %q", name, got, want)
		}
	}
}

const refsServices = `
variable "pw" {
  type      = string
  default   = "s3cret"
  sensitive = true
}
service "db" {
  image    = "postgres:16"
  replicas = 2
  port {
    target = 5432
  }
}
service "web" {
  image      = "nginx"
  depends_on = []
  env = {
    DB    = service.db.address
    ALL   = join(",", service.db.endpoints)
    PLAIN = "x"
  }
  sensitive_env = { DSN = "postgres://u:${var.pw}@${service.db.address}/app" }
  command    = ["serve", "--db", service.db.url]
  labels     = { upstream = service.db.address }
}
`

func TestServiceRefsResolve(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": refsNodes + refsServices})
	cfg, diags := Load(dir, Inputs{})
	if diags.HasErrors() {
		t.Fatal(renderAll(diags))
	}
	web := cfg.Service("web")
	if len(web.Env) != 0 || web.Command != nil || len(web.Labels) != 0 {
		t.Errorf("attributes with references are set before Resolve: %v %v %v", web.Env, web.Command, web.Labels)
	}
	var refs []string
	for _, r := range web.Refs {
		refs = append(refs, fmt.Sprintf("%s %s[%s] %d:%d", r, r.Field, r.Key, r.Range.Start.Line, r.Range.Start.Column))
	}
	want := []string{
		"service.db.address env[DB] 29:13",
		"service.db.endpoints env[ALL] 30:23",
		"service.db.address sensitive_env[DSN] 33:53",
		"service.db.url command[] 34:34",
		"service.db.address labels[upstream] 35:29",
	}
	if d := cmp.Diff(want, refs); d != "" {
		t.Errorf("refs (-want +got):\n%s", d)
	}
	if got := web.Dependencies(); !slices.Equal(got, []string{"db"}) {
		t.Errorf("dependencies %v", got)
	}
	if len(web.DependsOn) != 0 {
		t.Errorf("depends_on as written changed: %v", web.DependsOn)
	}

	info := ServiceInfo{Address: "192.168.0.1:30000", Endpoints: []string{"192.168.0.1:30000", "10.0.0.2:30000"}, URL: "http://192.168.0.1:30000"}
	r, diags := web.Resolve(map[string]ServiceInfo{"db": info})
	if diags.HasErrors() {
		t.Fatal(renderAll(diags))
	}
	wantEnv := map[string]EnvVar{
		"DB":    {Value: "192.168.0.1:30000"},
		"ALL":   {Value: "192.168.0.1:30000,10.0.0.2:30000"},
		"PLAIN": {Value: "x"},
		"DSN":   {Value: "postgres://u:s3cret@192.168.0.1:30000/app", Sensitive: true},
	}
	if d := cmp.Diff(wantEnv, r.Env); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"serve", "--db", "http://192.168.0.1:30000"}, r.Command); d != "" {
		t.Errorf("command: %s", d)
	}
	if r.Labels["upstream"] != "192.168.0.1:30000" {
		t.Errorf("labels %v", r.Labels)
	}
	if len(web.Env) != 0 {
		t.Errorf("Resolve changed the configuration's service")
	}
	if _, diags := web.Resolve(map[string]ServiceInfo{}); !diags.HasErrors() || diags[0].Subject.Start.Line != 29 {
		t.Errorf("a reference to an unplaced service: %v", diags)
	}
	if db := cfg.Service("db"); db.Refs != nil {
		t.Errorf("db has refs %v", db.Refs)
	}
	if got, _ := cfg.Service("db").Resolve(nil); got != cfg.Service("db") {
		t.Errorf("a service without references is not returned as is")
	}
}

// TestServiceRefErrors checks each mistake gives its error at FILE:LINE:COL.
func TestServiceRefErrors(t *testing.T) {
	db := `
service "db" {
  image = "postgres:16"
  port {
    target = 5432
  }
}
`
	for _, tc := range []struct {
		name, hcl string
		want      []string // "LINE:COL Summary: detail fragment"
	}{
		{"undeclared service", `
service "web" {
  image = "nginx"
  env   = { DB = service.dbb.address }
}`, []string{`4:18 Reference to undeclared service: A service named "dbb" has not been declared. Did you mean "db"?`}},
		{"unknown attribute", `
service "web" {
  image = "nginx"
  env   = { DB = service.db.adress }
}`, []string{`4:18 Unsupported attribute: service.db has no attribute "adress"; it has address, endpoints and url. Did you mean "address"?`}},
		{"no attribute", `
service "web" {
  image = "nginx"
  env   = { DB = service.db }
}`, []string{`4:18 Invalid reference: A reference to a service must name the service`}},
		{"no port", `
service "cache" {
  image = "redis"
}
service "web" {
  image   = "nginx"
  command = ["x", service.cache.url]
}`, []string{`7:19 Referenced service has no port: service.cache.url is "host:port" of the service's first port, but the service "cache" has no port block.`}},
		{"no replica", `
service "cache" {
  image    = "redis"
  replicas = 0
  port {
    target = 6379
  }
}
service "web" {
  image = "nginx"
  env   = { C = service.cache.address }
}`, []string{`11:17 Referenced service has no replica: The service "cache" has replicas = 0`}},
		{"list in env", `
service "web" {
  image = "nginx"
  env   = { DB = service.db.endpoints }
}`, []string{`4:11 Incorrect attribute value type: Inappropriate value for attribute "env": element "DB": string required, but have list of string.`}},
		{"not allowed in image", `
service "web" {
  image = service.db.address
}`, []string{`3:11 Invalid reference: service.NAME.ATTR can be used only in a service's env`}},
		{"not allowed in placement", `
service "web" {
  image = "nginx"
  placement {
    constraint = service.db.address == ""
  }
}`, []string{`5:18 Invalid reference in placement`}},
		{"not allowed in locals", `
locals {
  a = service.db.address
}
service "web" {
  image = "nginx"
}`, []string{`3:7 Invalid reference: service.NAME.ATTR can be used only`}},
		{"self", `
service "web" {
  image = "nginx"
  port {
    target = 80
  }
  env = { SELF = service.web.url }
}`, []string{`7:18 Reference to the service itself: The service "web" refers to itself (service.web.url).`}},
		{"cycle through depends_on", `
service "web" {
  image      = "nginx"
  depends_on = ["api"]
  port {
    target = 80
  }
}
service "api" {
  image = "nginx"
  env   = { WEB = service.web.url }
}`, []string{`11:19 Dependency cycle: The services depend on each other in a cycle: api -> web -> api. berth starts a service after the ones it depends on, so a cycle can never start. A reference counts as depends_on: service.web.url in api.`}},
		{"cycle of references", `
service "web" {
  image = "nginx"
  env   = { API = service.api.address }
  port {
    target = 80
  }
}
service "api" {
  image = "nginx"
  labels = { web = service.web.address }
  port {
    target = 81
  }
}`, []string{`11:20 Dependency cycle: The services depend on each other in a cycle: api -> web -> api. berth starts a service after the ones it depends on, so a cycle can never start. A reference counts as depends_on: service.web.address in api, service.api.address in web.`}},
		{"bad private address", `
node "n2" {
  address         = "10.0.0.2"
  private_address = "10.0.0.2:22"
}
service "web" {
  image = "nginx"
}`, []string{`4:21 Invalid private_address: private_address must be a host name or an IP address with no port`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeConfig(t, map[string]string{"main.hcl": tc.hcl, "nodes.hcl": `node "n1" { address = "10.0.0.1" }` + db})
			_, diags := Load(dir, Inputs{})
			var got []string
			for _, d := range diags {
				if d.Severity != hcl.DiagError {
					continue
				}
				if d.Subject == nil || filepath.Base(d.Subject.Filename) != "main.hcl" {
					t.Errorf("error not in main.hcl: %s: %s (%v)", d.Summary, d.Detail, d.Subject)
					continue
				}
				got = append(got, fmt.Sprintf("%d:%d %s: %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, got[i], tc.want[i])
				}
			}
		})
	}
}
