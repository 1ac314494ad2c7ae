package planner

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/config"
)

// batchesOf returns, by service, the batches of its actions in plan order.
func batchesOf(p *Plan) map[string][]int {
	out := map[string][]int{}
	for _, a := range p.Actions {
		if b := out[a.Service]; len(b) == 0 || b[len(b)-1] != a.Batch {
			out[a.Service] = append(out[a.Service], a.Batch)
		}
	}
	return out
}

func mustPlan(t *testing.T, cfg *config.Config, live *Live, opts Options) *Plan {
	t.Helper()
	p, diags := Make(cfg, live, opts)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p
}

func wantBatches(t *testing.T, what string, p *Plan, want map[string][]int) {
	t.Helper()
	got := batchesOf(p)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		var b bytes.Buffer
		p.WriteText(&b)
		t.Fatalf("%s: batches by service %v, want %v\n%s", what, got, want, b.String())
	}
}

// Services that neither depend on nor refer to each other share batches,
// each with its own update.parallelism; a service that depends on another
// starts after that one's last batch.
func TestIndependentServicesShareBatches(t *testing.T) {
	nodes := threeNodes()
	a, b, c := svc("a", "echo:v1", 1), svc("b", "echo:v1", 1), svc("c", "echo:v1", 1)
	d := svc("d", "echo:v1", 1)
	d.DependsOn = []string{"a"}
	web := svc("web", "echo:v1", 3) // parallelism 1
	api := svc("api", "echo:v1", 4)
	api.Update.Parallelism = 2
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{a, b, c, d, web, api}}
	live := liveFor(nodes)

	p := mustPlan(t, cfg, live, Options{})
	wantBatches(t, "first deploy", p, map[string][]int{"a": {1}, "b": {1}, "c": {1}, "d": {2}, "web": {1}, "api": {1}})
	again := mustPlan(t, cfg, live, Options{})
	var b1, b2 bytes.Buffer
	p.WriteText(&b1)
	again.WriteText(&b2)
	if b1.String() != b2.String() || p.ID != again.ID {
		t.Fatal("the same configuration and live state gave two plans")
	}
	// Steps follow batches.
	for i := 1; i < len(p.Actions); i++ {
		if p.Actions[i].Batch < p.Actions[i-1].Batch || p.Actions[i].Step != p.Actions[i-1].Step+1 {
			t.Fatalf("actions out of order at step %d", p.Actions[i].Step)
		}
	}

	live = Simulate(live, p)
	for _, s := range cfg.Services {
		s.Image = "echo:v2"
	}
	p = mustPlan(t, cfg, live, Options{})
	wantBatches(t, "rolling update", p, map[string][]int{"a": {1}, "b": {1}, "c": {1}, "d": {2}, "web": {1, 2, 3}, "api": {1, 2}})
	for _, bt := range []int{1, 2} {
		n := 0
		for _, x := range p.Actions {
			if x.Batch == bt && x.Service == "api" {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("batch %d holds %d replicas of api, want its update.parallelism 2", bt, n)
		}
	}

	// A dependency with no change of its own still orders its dependents
	// after its dependencies.
	live = Simulate(live, p)
	e := svc("e", "echo:v2", 1)
	e.DependsOn = []string{"d"}
	cfg.Services = append(cfg.Services, e)
	a.Image = "echo:v1"
	p = mustPlan(t, cfg, live, Options{})
	wantBatches(t, "dependency unchanged", p, map[string][]int{"a": {1}, "e": {2}})

	// destroy: dependents first, the others together.
	live = Simulate(live, p)
	p = mustPlan(t, cfg, live, Options{Destroy: true})
	wantBatches(t, "destroy", p, map[string][]int{"e": {1}, "d": {2}, "a": {3}, "b": {1}, "c": {1}, "web": {1}, "api": {1}})
}

// A service whose new container publishes a host port that another
// service's container holds on that node before the plan waits for that
// service's batches: the port is free only once that container is gone.
func TestPortTakenOverWaitsForItsHolder(t *testing.T) {
	nodes := threeNodes()
	onNode := func(s *config.Service, n string) { s.Placement.Constraint = expr(t, `node.name == "`+n+`"`) }
	alpha := svc("alpha", "echo:v1", 1)
	alpha.Ports = []config.Port{{Target: 8080, Published: 80, Protocol: "tcp"}}
	onNode(alpha, "node1")
	beta := svc("beta", "echo:v1", 1)
	onNode(beta, "node1")
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{alpha, beta}}
	live := Simulate(liveFor(nodes), mustPlan(t, cfg, liveFor(nodes), Options{}))

	// alpha moves to node2; beta now publishes port 80 on node1, which
	// alpha's old container holds until alpha's replace removes it.
	onNode(alpha, "node2")
	beta.Ports = []config.Port{{Target: 8080, Published: 80, Protocol: "tcp"}}
	p := mustPlan(t, cfg, live, Options{})
	wantBatches(t, "port taken over", p, map[string][]int{"alpha": {1}, "beta": {2}})

	// Without the handover they go together.
	beta.Ports = []config.Port{{Target: 8080, Published: 81, Protocol: "tcp"}}
	p = mustPlan(t, cfg, live, Options{})
	wantBatches(t, "ports apart", p, map[string][]int{"alpha": {1}, "beta": {1}})
}

// Removed services go first (dependents before their dependencies), then
// the configured ones.
func TestRemovedServicesGoFirst(t *testing.T) {
	nodes := threeNodes()
	a, b := svc("a", "echo:v1", 1), svc("b", "echo:v1", 1)
	b.DependsOn = []string{"a"}
	x := svc("x", "echo:v1", 1)
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{a, b, x}}
	live := Simulate(liveFor(nodes), mustPlan(t, cfg, liveFor(nodes), Options{}))
	cfg.Services = []*config.Service{svc("y", "echo:v1", 1)}
	p := mustPlan(t, cfg, live, Options{})
	wantBatches(t, "removed", p, map[string][]int{"b": {1}, "x": {1}, "a": {2}, "y": {3}})
}
