package proxy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// sample has two ports, host and path routes, and a route with no
// upstream; given out of order.
var sample = Table{
	{Service: "web", Port: 18080, Upstreams: []string{"10.0.0.12:30001", "10.0.0.11:30000"}},
	{Service: "api", Port: 18080, Path: "/api", Upstreams: []string{"10.0.0.13:30000"}},
	{Service: "docs", Port: 18080, Host: "docs.example.com", Path: "/", Upstreams: []string{"10.0.0.11:30002"}},
	{Service: "admin", Port: 18443, Host: "admin.example.com", Upstreams: nil},
}

const sampleDir = "/run/berth/shop/ingress"

func TestConfigGolden(t *testing.T) {
	for _, tls := range []string{"off", "internal", "auto"} {
		t.Run(tls, func(t *testing.T) {
			for _, c := range []struct {
				name string
				gen  func(Table, Options) ([]byte, error)
			}{{"config", Config}, {"edge", EdgeConfig}} {
				got, err := c.gen(sample, Options{TLS: tls, Dir: sampleDir})
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", c.name+"-"+tls+".json")
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s (go test ./executor/proxy -update):\n%s", c.name, path, got)
				}
			}
		})
	}
}

func TestConfigDeterministic(t *testing.T) {
	rev := Table{sample[3], sample[2], sample[1], sample[0]}
	for _, gen := range []func(Table, Options) ([]byte, error){Config, EdgeConfig} {
		a, _ := gen(sample, Options{Dir: sampleDir})
		b, _ := gen(rev, Options{Dir: sampleDir})
		if !bytes.Equal(a, b) || len(a) == 0 {
			t.Error("the same routes in another order give another config")
		}
	}
	// The edge depends on ports, hosts and TLS only: other upstreams
	// give the same edge.
	moved := sample.Sorted()
	for i := range moved {
		moved[i].Upstreams = []string{"10.9.9.9:31000"}
	}
	a, _ := EdgeConfig(sample, Options{Dir: sampleDir})
	b, _ := EdgeConfig(moved, Options{Dir: sampleDir})
	if !bytes.Equal(a, b) {
		t.Error("other upstreams give another edge configuration")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		t    Table
		o    Options
		want string
	}{
		{Table{{Service: "web", Port: 0}}, Options{}, "port 0 out of range"},
		{Table{{Service: "web", Port: 80, Path: "api"}}, Options{}, `path "api" does not start with /`},
		{Table{{Service: "web", Port: 80, Path: "/a*"}}, Options{}, "wildcard"},
		{Table{{Service: "a", Port: 80, Host: "x"}, {Service: "b", Port: 80, Host: "x"}}, Options{}, `routes of a and b both take port 80 host "x" path ""`},
		{Table{{Service: "web", Port: 80, Upstreams: []string{"10.0.0.1"}}}, Options{}, `upstream "10.0.0.1" is not host:port`},
		{nil, Options{TLS: "on"}, `ingress tls "on": want off, internal or auto`},
		{nil, Options{Dir: "run/x"}, `ingress socket directory "run/x": want an absolute path`},
	}
	for _, c := range cases {
		if c.o.Dir == "" {
			c.o.Dir = sampleDir
		}
		for _, gen := range []func(Table, Options) ([]byte, error){Config, EdgeConfig} {
			_, err := gen(c.t, c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Config(%v, %v): %v, want an error with %q", c.t, c.o, err, c.want)
			}
		}
	}
}

// The table and options read back from a configuration are exactly those it
// was made from (in canonical order), for every TLS mode.
func TestTableRoundTrip(t *testing.T) {
	for _, o := range []Options{{Dir: sampleDir}, {TLS: "off", Dir: sampleDir}, {TLS: "internal", Dir: "/x"}, {TLS: "auto", Dir: sampleDir}} {
		for _, tab := range []Table{sample, {}, nil} {
			b, err := Config(tab, o)
			if err != nil {
				t.Fatal(err)
			}
			p, ok := parseConfig(roundTripJSON(t, b))
			if !ok {
				t.Fatalf("%v %v: config not recognised as berth's:\n%s", o, tab, b)
			}
			if !p.table.Equal(tab) || p.opts != o {
				t.Errorf("read back %v %v, want %v %v", p.table, p.opts, tab.Sorted(), o)
			}
		}
	}
}

// roundTripJSON re-encodes b compactly with sorted keys, as Caddy returns it.
func roundTripJSON(t *testing.T, b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return out
}

// Anything berth did not write exactly is not berth's: ok=false.
func TestParseForeign(t *testing.T) {
	good, _ := Config(sample, Options{Dir: sampleDir})
	cases := map[string]string{
		"nothing loaded": `null`,
		"empty":          `{}`,
		"no marker":      strings.Replace(string(good), `"@id": "berth-ingress::`+sampleDir+`"`, `"@id": "mine"`, 1),
		"hand edit":      strings.Replace(string(good), `"try_duration": "5s"`, `"try_duration": "9s"`, 1),
		"extra app":      strings.Replace(string(good), `"apps": {`, `"apps": {"pki": {},`, 1),
		"other socket":   strings.Replace(string(good), `port-18443.sock`, `port-18444.sock`, 1),
		"foreign":        `{"apps":{"http":{"servers":{"srv0":{"listen":[":80"],"routes":[]}}}}}`,
		"not json":       `{`,
	}
	for name, raw := range cases {
		if raw == string(good) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if p, ok := parseConfig([]byte(raw)); ok {
			t.Errorf("%s: read as berth's: %v", name, p)
		}
	}
	if _, ok := parseConfig(good); !ok {
		t.Error("berth's own config not recognised")
	}
}

func TestDiff(t *testing.T) {
	old := Table{
		{Service: "web", Port: 80, Upstreams: []string{"a:1", "b:1", "c:1"}},
		{Service: "api", Port: 80, Path: "/api", Upstreams: []string{"d:1"}},
		{Service: "gone", Port: 81, Upstreams: []string{"e:1", "f:1"}},
	}
	new := Table{
		{Service: "web", Port: 80, Upstreams: []string{"b:1", "c:1", "g:1", "h:1"}},
		{Service: "api", Port: 80, Path: "/api", Upstreams: []string{"d:1"}},
		// Same upstream, another route: removed from one, added to the other.
		{Service: "api", Port: 80, Path: "/v2", Upstreams: []string{"d:1"}},
	}
	if add, rm := Diff(old, new); add != 3 || rm != 3 {
		t.Errorf("Diff = +%d -%d, want +3 -3", add, rm)
	}
	if add, rm := Diff(new, new); add != 0 || rm != 0 {
		t.Errorf("Diff of a table with itself = +%d -%d", add, rm)
	}
	if add, rm := Diff(nil, old); add != 6 || rm != 0 {
		t.Errorf("Diff from nothing = +%d -%d, want +6 -0", add, rm)
	}
}

func TestTableEqual(t *testing.T) {
	a := Table{{Service: "web", Port: 80, Upstreams: []string{"b:1", "a:1"}}}
	b := Table{{Service: "web", Port: 80, Upstreams: []string{"a:1", "b:1"}}}
	if !a.Equal(b) {
		t.Error("upstream order counts")
	}
	if a.Equal(Table{{Service: "web", Port: 80, Upstreams: []string{"a:1"}}}) {
		t.Error("a missing upstream does not count")
	}
	if !Table(nil).Equal(Table{}) {
		t.Error("nil and empty differ")
	}
}
