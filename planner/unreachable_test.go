package planner

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

// A node that cannot be read may run replicas: those found on no reachable
// node are left alone, not created elsewhere (they would run twice, their
// data split, once the node is back), unless the node's placement
// constraint, judged on what is known without a connection, rules it out.
// New replicas of a scale-up are no exception: berth cannot tell them from
// replicas the node runs. (Here nothing bounds what node3 may hold: no
// published port, no max_per_node; the golden cases node-unreachable-*
// show the bound.)
func TestUnreachableNodeReplicasNotDuplicated(t *testing.T) {
	nodes := threeNodes()
	nodes[2].Labels["role"] = "db"
	for _, tc := range []struct {
		name       string
		constraint string
		creates    int
	}{
		{"no constraint", "", 0},
		{"constraint true for the node", `node.labels.zone != "x"`, 0},
		{"constraint on engine facts", `node.cpus >= 1`, 0},
		{"constraint false for the node", `node.labels.zone != "c"`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			web := svc("web", "echo:v1", 3) // no port, no max_per_node: node1 and node2 could take more
			if tc.constraint != "" {
				web.Placement.Constraint = expr(t, tc.constraint)
			}
			cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{web}}
			live := liveFor(nodes)
			first, diags := Make(cfg, live, Options{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			live = Simulate(live, first)
			// node3 goes silent (it runs a replica unless its constraint
			// is false), and the service scales up to 4.
			live.Nodes["node3"] = &NodeState{Name: "node3", Error: "node3: connection refused"}
			web.Replicas = 4
			p, diags := Make(cfg, live, Options{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			creates := 0
			for _, a := range p.Actions {
				if a.Kind == Create {
					creates++
				}
				if a.Node == "node3" {
					t.Fatalf("an action on the unreachable node: %+v", a)
				}
			}
			if creates != tc.creates {
				t.Fatalf("%d creates, want %d: %+v", creates, tc.creates, p.Actions)
			}
			if tc.creates == 0 && !strings.Contains(strings.Join(p.Warnings, "\n"), "may run on node3, which is unreachable: left alone, not created elsewhere") {
				t.Fatalf("no warning about the replica left alone: %q", p.Warnings)
			}
		})
	}
}

// A destroy covers a node removed from the configuration: every container
// of the project there is deleted (never another project's).
func TestDestroyCoversRemovedNode(t *testing.T) {
	nodes := threeNodes()
	web := svc("web", "echo:v1", 3)
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{web}}
	live := liveFor(nodes)
	first, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	live = Simulate(live, first)
	live.Nodes["node3"].Removed, live.Nodes["node3"].Address = true, "10.0.0.13"
	live.Nodes["node3"].Foreign = append(live.Nodes["node3"].Foreign, Container{ID: "f1", Name: "other", State: "running",
		Labels: map[string]string{LabelProject: "other"}})
	cfg.Nodes = nodes[:2]
	p, diags := Make(cfg, live, Options{Destroy: true})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	onNode3 := 0
	for _, a := range p.Actions {
		if a.Kind != Delete {
			t.Fatalf("a destroy action that is not a delete: %+v", a)
		}
		if a.Node == "node3" {
			onNode3++
			if a.Old.ID == "f1" {
				t.Fatal("the other project's container is deleted")
			}
		}
	}
	if len(p.Actions) != 3 || onNode3 != 1 {
		t.Fatalf("want 3 deletes, 1 on node3: %+v", p.Actions)
	}
	if n := p.Nodes[len(p.Nodes)-1]; n.Name != "node3" || !n.Removed || len(p.Unreachable()) != 0 {
		t.Fatalf("plan nodes: %+v", p.Nodes)
	}
}

// A removed node whose engine is a configured node's (its block renamed,
// the address written differently) is not treated as removed: its
// containers are the configured node's, and nothing is deleted.
func TestRemovedNodeSameEngineIgnored(t *testing.T) {
	nodes := threeNodes()
	web := svc("web", "echo:v1", 3)
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{web}}
	live := liveFor(nodes)
	first, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	live = Simulate(live, first)
	// node3's block is renamed "n3": the same engine answers under both.
	live.Nodes["node3"].Engine.ID = "ENGINE-3"
	renamed := *live.Nodes["node3"]
	renamed.Name = "n3"
	live.Nodes["n3"] = &renamed
	live.Nodes["node3"].Removed, live.Nodes["node3"].Address = true, "10.0.0.13"
	n3 := *nodes[2]
	n3.Name = "n3"
	cfg.Nodes = []*config.Node{nodes[0], nodes[1], &n3}
	p, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, a := range p.Actions {
		if a.Kind == Delete || a.Node == "node3" || (a.Old != nil && a.Old.Node == "node3") {
			t.Fatalf("an action on the renamed node's containers: %+v", a)
		}
	}
	if !p.Empty() {
		t.Fatalf("the plan changes something: %+v", p.Actions)
	}
	if !strings.Contains(strings.Join(p.Warnings, "\n"), "its engine is node n3's") {
		t.Fatalf("warnings: %q", p.Warnings)
	}
}
