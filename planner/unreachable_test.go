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
