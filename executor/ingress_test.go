package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// fakeAdmin is an in-process stand-in for Caddy's admin API on each fake
// node: it keeps the last loaded configuration, serves it back and logs
// every load (with the upstreams it routes to) into a journal shared with
// apply's progress events, so tests can check the order of both.
type fakeAdmin struct {
	mu      sync.Mutex
	config  map[string][]byte // node -> last loaded into its router
	edge    map[string][]byte // node -> last loaded into its edge
	journal []string
}

func (fa *fakeAdmin) log(s string) {
	fa.mu.Lock()
	fa.journal = append(fa.journal, s)
	fa.mu.Unlock()
}

func (fa *fakeAdmin) serve(t *testing.T, fc *fakeCluster) {
	fa.config = map[string][]byte{}
	fa.edge = map[string][]byte{}
	for name, f := range fc.nodes {
		sock := filepath.Join(t.TempDir(), "admin.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		// The edge keeps what it is given (its loads are not journaled:
		// they carry no upstream).
		edgeSock := filepath.Join(t.TempDir(), "edge.sock")
		eln, err := net.Listen("unix", edgeSock)
		if err != nil {
			t.Fatal(err)
		}
		esrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fa.mu.Lock()
			defer fa.mu.Unlock()
			switch {
			case r.Method == http.MethodPost && r.URL.Path == "/load":
				fa.edge[name], _ = io.ReadAll(r.Body)
			case r.URL.Path == "/config/":
				if b := fa.edge[name]; b != nil {
					w.Write(b)
				} else {
					io.WriteString(w, "null")
				}
			default:
				http.NotFound(w, r)
			}
		})}
		go esrv.Serve(eln)
		t.Cleanup(func() { esrv.Close() })
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fa.mu.Lock()
			defer fa.mu.Unlock()
			switch {
			case r.Method == http.MethodPost && r.URL.Path == "/load":
				b, _ := io.ReadAll(r.Body)
				fa.config[name] = b
				ups := upstreamsIn(b)
				fa.journal = append(fa.journal, "load "+name+" "+strings.Join(ups, ","))
				// Every upstream of every load is a running container.
				running := fc.runningAddrs()
				for _, u := range ups {
					if !running[u] {
						fa.journal = append(fa.journal, "BAD load "+name+": "+u+" is no running container")
					}
				}
			case r.URL.Path == "/config/":
				if b := fa.config[name]; b != nil {
					w.Write(b)
				} else {
					io.WriteString(w, "null")
				}
			case r.URL.Path == "/reverse_proxy/upstreams":
				io.WriteString(w, "[]")
			default:
				http.NotFound(w, r)
			}
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		f.SetUnixDialer(func(ctx context.Context, path string) (net.Conn, error) {
			var d net.Dialer
			switch path {
			case planner.IngressAdminSocket("demo"):
				return d.DialContext(ctx, "unix", sock)
			case planner.IngressEdgeAdminSocket("demo"):
				return d.DialContext(ctx, "unix", edgeSock)
			}
			return nil, fmt.Errorf("dial unix %s: no such file or directory", path)
		})
	}
}

// runningAddrs are the backend addresses of the running containers.
func (fc *fakeCluster) runningAddrs() map[string]bool {
	out := map[string]bool{}
	for _, f := range fc.nodes {
		own, _, _ := f.Containers(context.Background(), "demo")
		for _, c := range own {
			if c.State != "running" {
				continue
			}
			for _, b := range c.Ports {
				out[fmt.Sprintf("%s:%d", b.HostIP, b.HostPort)] = true
			}
		}
	}
	return out
}

func (fa *fakeAdmin) noBadLoads(t *testing.T) {
	t.Helper()
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for _, l := range fa.journal {
		if strings.HasPrefix(l, "BAD ") {
			t.Errorf("%s\n%s", l, strings.Join(fa.journal, "\n"))
			return
		}
	}
}

// upstreamsIn lists the "dial" addresses a Caddy configuration routes to,
// sorted (not those it only holds while they drain).
func upstreamsIn(b []byte) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["@id"] == "berth-ingress-draining" {
				return
			}
			if d, ok := x["dial"].(string); ok {
				out = append(out, d)
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	var v any
	json.Unmarshal(b, &v)
	walk(v)
	slices.Sort(out)
	return slices.Compact(out)
}

func ingressWeb(image string, replicas int) string {
	return `
project "demo" {
  ingress {
    image = "caddy:2.11.9"
  }
}
service "web" {
  image    = "` + image + `"
  replicas = ` + itoa(replicas) + `
  port {
    target    = 8080
    published = 18080
    mode      = "ingress"
  }
` + fastUpdate + `}
`
}

func newIngressCluster(t *testing.T) (*fakeCluster, *fakeAdmin) {
	fc := newFakeCluster(t)
	for _, f := range fc.nodes {
		f.AddImage("caddy:2.11.9")
	}
	fa := &fakeAdmin{}
	fa.serve(t, fc)
	return fc, fa
}

func (fa *fakeAdmin) progress(e Event) {
	if e.Type == EvStep || e.Type == EvPhase {
		fa.log(fmt.Sprintf("%s %s.%d %s: %s", e.Type, e.Service, e.Replica, e.Node, e.Message))
	}
}

// index of the first journal line matching pred, -1 if none.
func (fa *fakeAdmin) first(pred func(string) bool) int {
	return slices.IndexFunc(fa.journal, pred)
}

// A start-first update through the ingress: proxies first, every new
// replica reaches the proxies only after it is healthy, every old one
// leaves them before it stops, and the proxies end with the plan's table.
func TestApplyIngressOrder(t *testing.T) {
	fc, fa := newIngressCluster(t)
	ctx := context.Background()
	v1 := loadHCLNoProject(t, ingressWeb("echo:v1", 3))
	p, _, err := fc.apply(ctx, v1, ApplyOptions{Progress: fa.progress})
	if err != nil {
		t.Fatal(err)
	}
	if p.Actions[0].Service != planner.IngressService || p.Ingress == nil || len(p.Ingress.Nodes) != 3 {
		t.Fatalf("proxies do not come first: %+v", p.Actions[0])
	}
	if next := fc.replan(v1); !next.Empty() {
		t.Fatalf("plan after apply not empty: %+v %+v", next.Actions, next.Ingress)
	}
	fa.mu.Lock()
	fa.journal = nil
	fa.mu.Unlock()

	v2 := loadHCLNoProject(t, ingressWeb("echo:v2", 3))
	p, _, err = fc.apply(ctx, v2, ApplyOptions{Progress: fa.progress})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.Actions {
		if a.Kind != planner.Replace || a.Order != planner.StartFirst || len(a.Upstreams) != 1 || len(a.OldUpstreams) != 1 {
			t.Fatalf("want start-first replaces with upstreams, got %+v", a)
		}
		newAddr, oldAddr := a.Upstreams[0].Address, a.OldUpstreams[0].Address
		prefix := fmt.Sprintf("step %s.%d %s: ", a.Service, a.Replica, a.Node)
		healthy := fa.first(func(s string) bool { return s == prefix+"wait until healthy" })
		added := fa.first(func(s string) bool { return strings.HasPrefix(s, "load ") && strings.Contains(s, newAddr) })
		removed := slices.IndexFunc(fa.journal[max(added, 0):], func(s string) bool { return strings.HasPrefix(s, "load ") && !strings.Contains(s, oldAddr) })
		stop := fa.first(func(s string) bool { return s == prefix+"stop the old container" })
		if healthy < 0 || added < healthy || removed < 0 || stop < added+removed {
			t.Fatalf("%s: healthy at %d, added at %d, old removed at +%d, stop at %d:\n%s", a.Container, healthy, added, removed, stop, strings.Join(fa.journal, "\n"))
		}
	}
	for n, b := range fa.config {
		if got, want := upstreamsIn(b), p.Ingress.Routes[0].Upstreams; !slices.Equal(got, want) {
			t.Errorf("%s serves %v, the plan's table is %v", n, got, want)
		}
		// The node's edge listens on the port and hands it to the
		// router's socket for it.
		sock := fmt.Sprintf("unix/%s/port-%d.sock", planner.IngressDir("demo"), p.Ingress.Routes[0].Port)
		if got := upstreamsIn(fa.edge[n]); !slices.Equal(got, []string{sock}) {
			t.Errorf("%s's edge forwards to %v, want %s", n, got, sock)
		}
	}
	if next := fc.replan(v2); !next.Empty() {
		t.Fatalf("plan after the update not empty")
	}
	fa.noBadLoads(t)
}

// An update that fails after two replicas were replaced and served: the
// rollback restarts the old containers, then pushes the start table, then
// removes the new ones; no proxy ever routes to a container that is not
// running, and the proxies end with the start table.
func TestApplyIngressRollbackAfterServed(t *testing.T) {
	fc, fa := newIngressCluster(t)
	ctx := context.Background()
	v1 := loadHCLNoProject(t, ingressWeb("echo:v1", 3))
	if _, _, err := fc.apply(ctx, v1, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	start := map[string][]string{}
	for n, b := range fa.config {
		start[n] = upstreamsIn(b)
	}
	fc.nodes["node3"].SetError("CreateContainer", errors.New("no space left on device"))
	fc.nodes["node1"].ResetCalls()
	v2 := loadHCLNoProject(t, ingressWeb("echo:v2", 3))
	_, res, err := fc.apply(ctx, v2, ApplyOptions{Progress: fa.progress})
	var rb *RollbackError
	if !errors.As(err, &rb) || !res.RolledBack || rb.Undone != 3 {
		t.Fatalf("want a rollback of 3 actions, got %v", err)
	}
	fc.nodes["node3"].SetError("CreateContainer", nil)
	fa.noBadLoads(t)
	// On node1 the old web.1 starts again before the new one goes.
	calls := fc.nodes["node1"].Calls()
	idRenamed := func(suffix string) string {
		for _, c := range calls {
			if f := strings.Fields(c); len(f) == 3 && f[0] == "RenameContainer" && strings.HasPrefix(f[2], "demo-web-1"+suffix) {
				return f[1]
			}
		}
		return "?"
	}
	oldID, newID := idRenamed("_berth_old_"), idRenamed("_berth_undo_")
	restart := slices.Index(calls, "StartContainer "+oldID)
	removeNew := slices.Index(calls, "RemoveContainer "+newID)
	if restart < 0 || removeNew < restart {
		t.Errorf("node1: old restarted at %d, new removed at %d:\n%s", restart, removeNew, strings.Join(calls, "\n"))
	}
	for n, b := range fa.config {
		if got := upstreamsIn(b); !slices.Equal(got, start[n]) {
			t.Errorf("%s serves %v after the rollback, before it served %v", n, got, start[n])
		}
	}
	for n, cs := range fc.running() {
		for _, c := range cs {
			if !(strings.Contains(c, "echo:v1 running") || strings.HasPrefix(c, "demo-ingress ") || strings.HasPrefix(c, "demo-ingress-edge ")) || strings.Contains(c, "_berth_") {
				t.Errorf("%s after the rollback: %s", n, c)
			}
		}
	}
	if next := fc.replan(v1); !next.Empty() {
		t.Fatalf("v1 plan not empty after the rollback: %+v %+v", next.Actions, next.Ingress)
	}
}

// A failed update through the ingress rolls the routes back: every proxy
// ends with the start table, and the broken replicas never reached them.
func TestApplyIngressRollback(t *testing.T) {
	fc, fa := newIngressCluster(t)
	ctx := context.Background()
	v1 := loadHCLNoProject(t, ingressWeb("echo:v1", 3))
	if _, _, err := fc.apply(ctx, v1, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	start := map[string][]string{}
	for n, b := range fa.config {
		start[n] = upstreamsIn(b)
	}
	broken := loadHCLNoProject(t, ingressWeb("echo:broken", 3))
	p, _, err := fc.apply(ctx, broken, ApplyOptions{})
	var rb *RollbackError
	if !errors.As(err, &rb) {
		t.Fatalf("want a rollback, got %v", err)
	}
	for _, a := range p.Actions {
		for _, line := range fa.journal {
			if strings.HasPrefix(line, "load ") && strings.Contains(line, a.Upstreams[0].Address) && !slices.Contains(start["node1"], a.Upstreams[0].Address) {
				t.Fatalf("the broken %s reached a proxy: %s", a.Container, line)
			}
		}
	}
	for n, b := range fa.config {
		if got := upstreamsIn(b); !slices.Equal(got, start[n]) {
			t.Errorf("%s serves %v after the rollback, before it served %v", n, got, start[n])
		}
	}
	if next := fc.replan(v1); !next.Empty() {
		t.Fatalf("v1 plan not empty after the rollback: %+v", next.Ingress)
	}
}

// A proxy that lost its routes (restarted without its volume) makes the
// plan non-empty with no action, and apply pushes the table back.
func TestApplyIngressRepairsRoutes(t *testing.T) {
	fc, fa := newIngressCluster(t)
	ctx := context.Background()
	v1 := loadHCLNoProject(t, ingressWeb("echo:v1", 3))
	if _, _, err := fc.apply(ctx, v1, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	fa.mu.Lock()
	want := fa.config["node2"]
	delete(fa.config, "node2")
	fa.mu.Unlock()
	p := fc.replan(v1)
	if p.Empty() || len(p.Actions) != 0 {
		t.Fatalf("want a routes-only plan, got empty=%v actions %+v", p.Empty(), p.Actions)
	}
	if _, _, err := fc.apply(ctx, v1, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := upstreamsIn(fa.config["node2"]); !slices.Equal(got, upstreamsIn(want)) {
		t.Fatalf("node2 serves %v, want %v", got, upstreamsIn(want))
	}
	if next := fc.replan(v1); !next.Empty() {
		t.Fatal("plan after the repair not empty")
	}
}

// loadHCLNoProject is loadHCL with the test's own project block.
func loadHCLNoProject(t *testing.T, services string) *config.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(strings.Replace(fakeNodesHCL, `project "demo" {}`, "", 1)+services), 0o644)
	cfg, diags := config.Load(dir, config.Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

// A proxy whose admin socket is not there yet is waited for, however the
// dial says so: locally, or over SSH (where OpenSSH refuses the channel).
func TestIsDialError(t *testing.T) {
	for msg, want := range map[string]bool{
		"caddy admin POST /load: dial unix /run/berth/p/ingress/admin.sock: connect: no such file or directory":            true,
		"caddy admin POST /load: dial unix /run/berth/p/ingress/admin.sock: connect: connection refused":                   true,
		`caddy admin POST /load: dial unix /run/berth/p/ingress/admin.sock: ssh: rejected: connect failed ("open failed")`: true,
		"caddy admin POST /load: 400 Bad Request: loading config: listen tcp :80: bind: address already in use":            false,
	} {
		if got := isDialError(errors.New(msg)); got != want {
			t.Errorf("isDialError(%q) = %v, want %v", msg, got, want)
		}
	}
}
