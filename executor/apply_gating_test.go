package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/planner"
)

// newFakeClusterOf is a fake cluster of the named nodes (configured as
// node "NAME" blocks in nodesHCL), each holding the echo images.
func newFakeClusterOf(t *testing.T, names ...string) *fakeCluster {
	fc := &fakeCluster{t: t, nodes: map[string]*fake.Node{}}
	m := map[string]Node{}
	for _, n := range names {
		f := fake.NewNode(n)
		for _, img := range []string{"echo:v1", "echo:v2"} {
			f.AddImage(img)
		}
		fc.nodes[n] = f
		m[n] = f
	}
	fc.sess = NewSession("demo", m)
	return fc
}

func nodesHCL(names ...string) string {
	s := "project \"demo\" {}\n"
	for i, n := range names {
		s += fmt.Sprintf("node %q {\n  address = \"10.0.0.%d\"\n}\n", n, 11+i)
	}
	return s
}

func loadConfig(t *testing.T, hcl string) *config.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644)
	cfg, diags := config.Load(dir, config.Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

// gatedNode holds every CreateContainer at a gate until the test lets it
// through, and counts the node operations in flight: from the node's
// CreateContainer until apply reports the node's action done (or failed),
// which apply does before it frees the node's slot.
type gate struct {
	mu       sync.Mutex
	held     []chan struct{}
	inFlight map[string]bool
	max      int
}

type gatedNode struct {
	*fake.Node
	g *gate
}

func (n *gatedNode) CreateContainer(ctx context.Context, name string, spec *planner.ContainerSpec) (string, error) {
	g := n.g
	ch := make(chan struct{})
	g.mu.Lock()
	g.inFlight[n.Name()] = true
	if len(g.inFlight) > g.max {
		g.max = len(g.inFlight)
	}
	g.held = append(g.held, ch)
	g.mu.Unlock()
	<-ch
	return n.Node.CreateContainer(ctx, name, spec)
}

func (g *gate) event(e Event) {
	if e.Type == EvActionDone || e.Type == EvActionFailed {
		g.mu.Lock()
		delete(g.inFlight, e.Node)
		g.mu.Unlock()
	}
}

// releaseAll lets every held CreateContainer through and says how many
// were held.
func (g *gate) releaseAll() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.held)
	for _, ch := range g.held {
		close(ch)
	}
	g.held = nil
	return n
}

// -parallelism bounds how many nodes a batch works on at once: with 2 and a
// batch over 5 nodes, 2 nodes are worked on together and never more. The
// test runs in a synctest bubble: synctest.Wait returns once every
// goroutine of the apply is blocked (at the gate, or waiting for a slot),
// so what is counted does not depend on timing.
func TestApplyParallelismBoundsNodesAtOnce(t *testing.T) {
	names := []string{"node1", "node2", "node3", "node4", "node5"}
	for _, par := range []int{2, 1, 5} {
		t.Run(fmt.Sprint("parallelism ", par), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fc := newFakeClusterOf(t, names...)
				g := &gate{inFlight: map[string]bool{}}
				m := map[string]Node{}
				for _, n := range names {
					m[n] = &gatedNode{Node: fc.nodes[n], g: g}
				}
				fc.sess = NewSession("demo", m)
				cfg := loadConfig(t, nodesHCL(names...)+`
service "web" {
  image    = "echo:v1"
  replicas = 5
  port {
    target    = 8080
    published = 8080
  }
  update {
    monitor = "0s"
  }
}
`)
				type outcome struct {
					p   *planner.Plan
					res *Result
					err error
				}
				done := make(chan outcome, 1)
				go func() {
					p, res, err := fc.apply(context.Background(), cfg, ApplyOptions{Parallelism: par, Progress: g.event})
					done <- outcome{p, res, err}
				}()
				synctest.Wait()
				// Every goroutine is blocked: the first nodes at the gate,
				// the others waiting for a slot.
				if held := len(g.held); held != par {
					t.Errorf("parallelism %d: %d nodes at work together at the start of the batch", par, held)
				}
				released := 0
				for {
					synctest.Wait()
					n := g.releaseAll()
					released += n
					select {
					case o := <-done:
						if o.err != nil {
							t.Fatal(o.err)
						}
						batches := map[int]bool{}
						for _, a := range o.p.Actions {
							batches[a.Batch] = true
						}
						if len(o.p.Actions) != 5 || len(batches) != 1 || len(o.res.Done) != 5 || released != 5 {
							t.Fatalf("want one batch of 5 creates, all done: %d actions in %d batches, %d done, %d created",
								len(o.p.Actions), len(batches), len(o.res.Done), released)
						}
						if g.max != par {
							t.Fatalf("parallelism %d: up to %d nodes were worked on at once", par, g.max)
						}
						return
					default:
						if n == 0 {
							t.Fatal("the apply is stuck: nothing at the gate and not done")
						}
					}
				}
			})
		})
	}
}

const cmdHealthService = `
service "web" {
  image    = "%s"
  replicas = 3
  update {
    monitor = "0s"
  }
  health {
    cmd      = ["/healthcheck"]
    interval = "10ms"
  }
}
`

// health.cmd gates a replica through Docker's own healthcheck (the engine's
// health status), not through a probe of berth's: a replica the engine
// reports unhealthy fails the apply and everything is rolled back; one it
// reports healthy passes. Nothing is dialled through the node's connection.
func TestApplyHealthCmdUsesDockerHealthcheck(t *testing.T) {
	fc := newFakeCluster(t)
	for _, f := range fc.nodes {
		f.SetBehaviour("echo:v2", fake.Behaviour{Health: "healthy"})
		f.SetBehaviour("echo:sick", fake.Behaviour{Health: "unhealthy", Logs: "healthcheck: db unreachable\n"})
		f.AddImage("echo:sick")
	}
	ctx := context.Background()
	if _, _, err := fc.apply(ctx, loadHCL(t, fmt.Sprintf(cmdHealthService, "echo:v1")), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range fc.nodes {
		f.ResetCalls()
	}
	if _, _, err := fc.apply(ctx, loadHCL(t, fmt.Sprintf(cmdHealthService, "echo:v2")), ApplyOptions{}); err != nil {
		t.Fatalf("replicas Docker reports healthy: %v", err)
	}
	for name, f := range fc.nodes {
		c, ok := f.Container("demo-web-" + name[len(name)-1:])
		if !ok || c.Image != "echo:v2" || c.State != "running" || c.Health != "healthy" {
			t.Fatalf("%s: %+v", name, c)
		}
		spec, _ := f.Spec(c.ID)
		if spec.Health == nil || strings.Join(spec.Health.Cmd, " ") != "/healthcheck" {
			t.Fatalf("%s: the container's engine healthcheck is %+v", name, spec.Health)
		}
		for _, call := range f.Calls() {
			if strings.HasPrefix(call, "DialContainer") {
				t.Fatalf("%s: health.cmd probed through the connection: %s", name, call)
			}
		}
	}
	before := fc.running()
	_, res, err := fc.apply(ctx, loadHCL(t, fmt.Sprintf(cmdHealthService, "echo:sick")), ApplyOptions{})
	var rb *RollbackError
	var re *ReplicaError
	if !errors.As(err, &rb) || !res.RolledBack || !errors.As(err, &re) ||
		!strings.Contains(err.Error(), "Docker's healthcheck reports it unhealthy") || !strings.Contains(err.Error(), "healthcheck: db unreachable") {
		t.Fatalf("want a rollback naming Docker's healthcheck and showing the logs, got %v", err)
	}
	if after := fc.running(); !equalRunning(before, after) {
		t.Fatalf("not rolled back:\nbefore %v\nafter  %v", before, after)
	}
}

// A replica whose healthcheck is still "starting" is waited for: it passes
// once the engine reports it healthy, and fails once the deadline (60 s)
// passes without that. The fake clock of a synctest bubble drives it.
func TestApplyHealthCmdStartingThenHealthy(t *testing.T) {
	for _, tt := range []struct {
		name    string
		changes []fake.Change
		fail    string
	}{
		{"healthy after 20s", []fake.Change{{After: 20 * time.Second, Health: "healthy"}}, ""},
		{"never healthy", nil, "not healthy after 1m0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fc := newFakeCluster(t)
				for _, f := range fc.nodes {
					f.SetBehaviour("echo:v2", fake.Behaviour{Health: "starting", Changes: tt.changes})
				}
				start := time.Now()
				_, _, err := fc.apply(context.Background(), loadHCL(t, strings.Replace(fmt.Sprintf(cmdHealthService, "echo:v2"), `interval = "10ms"`, `interval = "1s"`, 1)),
					ApplyOptions{Poll: 100 * time.Millisecond})
				took := time.Since(start)
				if tt.fail == "" {
					if err != nil || took < 20*time.Second || took > 21*time.Second {
						t.Fatalf("err %v after %s; want success once healthy at 20s", err, took)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.fail) || took < 60*time.Second {
					t.Fatalf("err %v after %s; want %q", err, took, tt.fail)
				}
			})
		})
	}
}

// update.monitor: a replica counts as started only once it has stayed
// healthy (and running, and not restarted) for the monitor period. One that
// turns unhealthy, exits or restarts within it fails the apply (rolled
// back); the same change after the monitor period no longer does. The fake
// clock of a synctest bubble drives the changes and the monitor.
func TestApplyMonitorWindow(t *testing.T) {
	const monitor = 30 * time.Second
	for _, tt := range []struct {
		kind    string
		restart string
		change  fake.Change
		fail    string
	}{
		{"unhealthy", "unless-stopped", fake.Change{Health: "unhealthy"}, "unhealthy"},
		{"exits", "no", fake.Change{Exit: true, ExitCode: 3}, "the container exited with code 3"},
		{"crashes and restarts", "unless-stopped", fake.Change{Restart: true}, "the container crashed and is being restarted (restart count 1)"},
	} {
		for _, at := range []time.Duration{10 * time.Second, 45 * time.Second} {
			within := at < monitor
			t.Run(fmt.Sprintf("%s at %s", tt.kind, at), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					fc := newFakeCluster(t)
					svc := func(image string) *config.Config {
						return loadHCL(t, `
service "web" {
  image    = "`+image+`"
  replicas = 1
  restart  = "`+tt.restart+`"
  placement {
    constraint = node.name == "node1"
  }
  update {
    monitor = "30s"
  }
  health {
    http     = "/healthz"
    port     = 8080
    interval = "1s"
  }
}
`)
					}
					opts := ApplyOptions{Poll: 100 * time.Millisecond}
					if _, _, err := fc.apply(context.Background(), svc("echo:v1"), opts); err != nil {
						t.Fatal(err)
					}
					before := fc.running()
					ch := tt.change
					ch.After = at
					fc.nodes["node1"].SetBehaviour("echo:v2", fake.Behaviour{Changes: []fake.Change{ch}, Logs: "v2 going down\n"})
					start := time.Now()
					_, res, err := fc.apply(context.Background(), svc("echo:v2"), opts)
					took := time.Since(start)
					if !within {
						// Healthy for the whole monitor: started, at 30s.
						if err != nil || took < monitor || took >= at {
							t.Fatalf("err %v after %s; want success after the %s monitor", err, took, monitor)
						}
						if c, _ := fc.nodes["node1"].Container("demo-web-1"); c.Image != "echo:v2" {
							t.Fatalf("replica after apply: %+v", c)
						}
						return
					}
					var rb *RollbackError
					if !errors.As(err, &rb) || !res.RolledBack || !strings.Contains(err.Error(), tt.fail) ||
						!strings.Contains(err.Error(), `service "web" replica 1 on node node1`) {
						t.Fatalf("err %v; want a rollback of replica 1 on node1 saying %q", err, tt.fail)
					}
					// It was healthy until the change: it failed after it,
					// within the monitor.
					if took < at || took >= monitor {
						t.Fatalf("failed after %s; the change came at %s, the monitor is %s", took, at, monitor)
					}
					if after := fc.running(); !equalRunning(before, after) {
						t.Fatalf("not rolled back:\nbefore %v\nafter  %v", before, after)
					}
				})
			})
		}
	}
}
