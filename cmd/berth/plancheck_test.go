package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/planner"
)

// Issue 19, items 1-3, as the commands show them: what the plan could see
// fails at plan time, and a plan made without a node says so.

// A container outside the project holding a replica's name: plan fails
// (exit 1) naming the node, the name and the holder, with the way out;
// apply fails the same way before changing anything.
func TestPlanForeignContainerHoldsName(t *testing.T) {
	tc := newCLICluster(t, cliWeb("echo:v1"))
	tc.nodes["node1"].AddForeign(planner.Container{Name: "demo-web-1", Image: "nginx:1.27", State: "running"})
	for _, args := range [][]string{{"plan", tc.dir}, {"plan", "-detailed-exitcode", tc.dir}, {"apply", "-auto-approve", tc.dir}} {
		r := tc.run(Streams{}, args...)
		if r.code != 1 {
			t.Fatalf("%s: want exit 1\n%s", args, r)
		}
		for _, w := range []string{"Container name demo-web-1 is taken on node node1", "a container not managed by berth", "image nginx:1.27",
			"Rename or remove that container", "set another project name"} {
			if !strings.Contains(r.err, w) {
				t.Errorf("%s: stderr lacks %q\n%s", args, w, r)
			}
		}
	}
	if m := tc.mutations(); len(m) != 0 {
		t.Fatalf("changed: %v", m)
	}
}

// Two node blocks on one engine (the fakes report the same engine ID):
// plan fails naming both nodes and the engine ID.
func TestPlanNodesShareEngine(t *testing.T) {
	tc := newCLICluster(t, cliWeb("echo:v1"))
	for _, n := range []string{"node1", "node3"} {
		f := tc.nodes[n]
		facts, _ := f.Info(t.Context())
		facts.ID = "SAME:ENGINE"
		f.SetFacts(facts)
	}
	r := tc.run(Streams{}, "plan", tc.dir)
	if r.code != 1 || !strings.Contains(r.err, "Nodes node1 and node3 reach the same Docker engine") || !strings.Contains(r.err, "SAME:ENGINE") ||
		!strings.Contains(r.err, "Remove all but one of these node blocks") {
		t.Fatalf("want exit 1 naming node1, node3 and the engine ID:\n%s", r)
	}
}

// node2 cannot be read; nothing runs yet. The plan creates the two
// replicas node2 cannot hold (the service publishes a port), never says
// "No changes", and its summary names node2. plan -detailed-exitcode
// exits 1 unless -allow-unreachable (then 2); apply refuses unless
// -allow-unreachable, then creates on node1 and node3.
func TestUnreachableNode(t *testing.T) {
	tc := newCLICluster(t, cliWeb("echo:v1"))
	tc.nodes["node2"].SetError("Info", errors.New("connect to 10.0.0.12:22: connection refused"))

	r := tc.run(Streams{}, "plan", tc.dir)
	if r.code != 0 || strings.Contains(r.out, "No changes") ||
		!strings.Contains(r.out, "Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy. Networks: 2 to create, 0 to remove. Node node2 is unreachable: this plan covers the other nodes only.") {
		t.Fatalf("plan:\n%s", r)
	}
	r = tc.run(Streams{}, "plan", "-detailed-exitcode", tc.dir)
	if r.code != 1 || !strings.Contains(r.err, "node node2 could not be read") || !strings.Contains(r.err, "-allow-unreachable") {
		t.Fatalf("plan -detailed-exitcode: want exit 1 naming node2 and -allow-unreachable:\n%s", r)
	}
	if r = tc.run(Streams{}, "plan", "-detailed-exitcode", "-allow-unreachable", tc.dir); r.code != 2 {
		t.Fatalf("plan -detailed-exitcode -allow-unreachable: want exit 2:\n%s", r)
	}
	for _, cmd := range []string{"apply", "destroy"} {
		r = tc.run(Streams{}, cmd, "-auto-approve", tc.dir)
		if r.code != 1 || !strings.Contains(r.err, cmd+" refused: node node2 (") || !strings.Contains(r.err, "run again with -allow-unreachable") {
			t.Fatalf("%s without -allow-unreachable: want exit 1 naming node2:\n%s", cmd, r)
		}
	}
	if m := tc.mutations(); len(m) != 0 {
		t.Fatalf("a refused apply changed: %v", m)
	}
	r = tc.run(Streams{}, "apply", "-auto-approve", "-allow-unreachable", tc.dir)
	if r.code != 0 {
		t.Fatalf("apply -allow-unreachable:\n%s", r)
	}
	for n, want := range map[string]int{"node1": 1, "node2": 0, "node3": 1} {
		if cs, _, _ := tc.nodes[n].Containers(t.Context(), "demo"); len(cs) != want {
			t.Errorf("%s holds %d containers, want %d", n, len(cs), want)
		}
	}
	// Now nothing changes on the reachable nodes, but web.1 may be missing
	// on node2: still no "No changes", and 2 with -allow-unreachable.
	r = tc.run(Streams{}, "plan", "-detailed-exitcode", "-allow-unreachable", tc.dir)
	if r.code != 2 || strings.Contains(r.out, "No changes") || !strings.Contains(r.out, "Plan: 0 to add") {
		t.Fatalf("plan after apply: want exit 2 and no \"No changes\":\n%s", r)
	}
	// With node2 back, and web.1 created there, exit 0.
	tc.nodes["node2"].SetError("Info", nil)
	if r = tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
		t.Fatalf("apply with node2 back:\n%s", r)
	}
	if r = tc.run(Streams{}, "plan", "-detailed-exitcode", tc.dir); r.code != 0 || !strings.Contains(r.out, "No changes.") {
		t.Fatalf("plan with every node read: want exit 0, No changes:\n%s", r)
	}
}

// detailedExit: 0 only when nothing is or may be missing.
func TestDetailedExit(t *testing.T) {
	up := []planner.NodeSnapshot{{Name: "node1", Reachable: true}}
	down := append(up, planner.NodeSnapshot{Name: "node2"})
	svc := func(placed int) []planner.ServicePlan {
		sp := planner.ServicePlan{Name: "web", Replicas: 2, Placement: map[string]string{}}
		for i := 1; i <= placed; i++ {
			sp.Placement[itoa(i)] = "node1"
		}
		return []planner.ServicePlan{sp}
	}
	for _, tt := range []struct {
		name  string
		p     *planner.Plan
		allow bool
		code  int
	}{
		{"all read, nothing", &planner.Plan{Nodes: up, Services: svc(2)}, false, 0},
		{"all read, changes", &planner.Plan{Nodes: up, Services: svc(2), Actions: []planner.Action{{Kind: planner.Create}}}, false, 2},
		{"unreachable", &planner.Plan{Nodes: down, Services: svc(2)}, false, 1},
		{"unreachable allowed, nothing there", &planner.Plan{Nodes: down, Services: svc(2)}, true, 0},
		{"unreachable allowed, a replica left to it", &planner.Plan{Nodes: down, Services: svc(1)}, true, 2},
		{"unreachable allowed, destroy", &planner.Plan{Nodes: down, Destroy: true}, true, 2},
	} {
		err := detailedExit(tt.p, tt.allow)
		code := 0
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d", tt.name, code, tt.code)
		}
	}
}
