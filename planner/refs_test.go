package planner

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

// TestRefsPlanRepeatable plans the move of a referenced service many times:
// every plan is byte-identical, in text and JSON.
func TestRefsPlanRepeatable(t *testing.T) {
	dir := filepath.Join("testdata", "refs-db-moves")
	cfg, _ := loadCase(t, dir)
	var live Live
	readJSON(t, filepath.Join(dir, "live.json"), &live, false)
	render := func() string {
		p, diags := Make(cfg, &live, Options{})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		var b bytes.Buffer
		p.WriteText(&b)
		js, _ := json.Marshal(p)
		return b.String() + string(js)
	}
	first := render()
	if !strings.Contains(first, `env.DB: "10.0.0.11:5432" -> "10.0.0.13:5432" (service.db.address: db.1 moves node1 -> node3)`) {
		t.Fatalf("no reason naming the move:\n%s", first)
	}
	for i := 0; i < 20; i++ {
		if got := render(); got != first {
			t.Fatalf("plan %d differs from the first", i+2)
		}
	}
}

// TestRefsCauseOnlyWhenTheValueChanged: web's own edit is not blamed on db,
// and a port change of db is named as the cause.
func TestRefsCauseOnlyWhenTheValueChanged(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("testdata", "refs-db-moves", "before", "main.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	before := writeDir(t, string(base))
	cfg0, diags := config.Load(before, config.Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	live := baseLive(cfg0)
	p0, diags := Make(cfg0, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	live = Simulate(live, p0)

	for _, tc := range []struct{ name, from, to, want, notWant string }{
		{"own edit", `MODE = "prod"`, `MODE = "dev"`, `web.1 on node2 (replace, stop-first): env.MODE changed`, "service.db"},
		{"db port", "published = 5432", "published = 5433",
			`env.DB: "10.0.0.11:5432" -> "10.0.0.11:5433" (service.db.address: db.1's host port 5432 -> 5433)`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := config.Load(writeDir(t, strings.Replace(string(base), tc.from, tc.to, 1)), config.Inputs{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			p, diags := Make(cfg, live, Options{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var b bytes.Buffer
			p.WriteText(&b)
			if !strings.Contains(b.String(), tc.want) || (tc.notWant != "" && strings.Contains(b.String(), tc.notWant)) {
				t.Errorf("plan:\n%s\nwant %q, not %q", b.String(), tc.want, tc.notWant)
			}
		})
	}
}

func writeDir(t *testing.T, hcl string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestServiceURL(t *testing.T) {
	host := PortSpec{Target: 8080, Published: 18080, Protocol: "tcp"}
	ing := func(pub int, hostName, path string) PortSpec {
		return PortSpec{Target: 8080, Published: pub, Protocol: "tcp", Mode: "ingress", HostName: hostName, Path: path}
	}
	for _, c := range []struct {
		addr string
		port PortSpec
		tls  string
		want string
	}{
		{"10.0.0.11:18080", host, "internal", "http://10.0.0.11:18080"},
		{"10.0.0.11:18080", ing(18080, "", ""), "off", "http://10.0.0.11:18080"},
		{"10.0.0.11:80", ing(80, "", "/api"), "off", "http://10.0.0.11/api"},
		{"10.0.0.11:443", ing(443, "shop.example.com", ""), "auto", "https://shop.example.com"},
		{"10.0.0.11:8443", ing(8443, "", "/v1"), "internal", "https://10.0.0.11:8443/v1"},
		{"[fd00::1]:18080", ing(18080, "", ""), "off", "http://[fd00::1]:18080"},
	} {
		if got := serviceURL(c.addr, c.port, c.tls); got != c.want {
			t.Errorf("serviceURL(%s, %+v, %s) = %s, want %s", c.addr, c.port, c.tls, got, c.want)
		}
	}
}
