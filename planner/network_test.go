package planner

import (
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

// A first deploy creates the network on every node that gets a replica;
// the simulated result needs nothing more; scaling down to fewer nodes
// removes it where no replica is left; destroy removes it everywhere.
func TestNetworkFollowsReplicas(t *testing.T) {
	nodes := threeNodes()
	web := svc("web", "echo:v1", 2)
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{web}}
	live := liveFor(nodes)
	p, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := networkLines(p); len(got) != 2 || !strings.HasPrefix(got[0], "create berth-demo on ") {
		t.Fatalf("first deploy networks: %v", got)
	}
	for _, a := range p.Actions {
		if a.Spec.Network != "berth-demo" || strings.Join(a.Spec.Aliases, ",") != "web,web-"+strconv.Itoa(a.Replica) {
			t.Errorf("%s: network %q aliases %v", a.Container, a.Spec.Network, a.Spec.Aliases)
		}
	}
	live = Simulate(live, p)
	if p2, _ := Make(cfg, live, Options{}); !p2.Empty() {
		t.Fatalf("not converged: %+v %+v", p2.Networks, p2.Actions)
	}

	web.Replicas = 1
	p, diags = Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := networkLines(p); len(got) != 1 || !strings.HasPrefix(got[0], "delete berth-demo on ") {
		t.Fatalf("scale down networks: %v", got)
	}
	live = Simulate(live, p)
	if p2, _ := Make(cfg, live, Options{}); !p2.Empty() {
		t.Fatalf("not converged after scale down: %+v %+v", p2.Networks, p2.Actions)
	}

	p, _ = Make(cfg, live, Options{Destroy: true})
	if got := networkLines(p); len(got) != 1 || !strings.HasPrefix(got[0], "delete berth-demo on ") {
		t.Fatalf("destroy networks: %v", got)
	}
	var txt strings.Builder
	p.WriteText(&txt)
	if !strings.Contains(txt.String(), "Networks: 0 to create, 1 to remove.") || !strings.Contains(txt.String(), "-   network berth-demo on ") {
		t.Errorf("destroy plan text:\n%s", txt.String())
	}
}

// A plan of network work only is not empty; a missing network on a node
// makes a saved plan stale, naming it.
func TestNetworkOnlyPlanAndStaleness(t *testing.T) {
	nodes := threeNodes()
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{svc("web", "echo:v1", 3)}}
	first, _ := Make(cfg, liveFor(nodes), Options{})
	live := Simulate(liveFor(nodes), first)
	p, _ := Make(cfg, live, Options{})
	saved := savedRoundTrip(t, p)

	gone := cloneLive(live)
	gone.Nodes["node2"].Networks = nil
	p2, _ := Make(cfg, gone, Options{})
	if p2.Empty() || len(p2.Actions) != 0 || len(p2.Networks) != 1 || p2.Networks[0].Node != "node2" {
		t.Fatalf("network removed by hand: empty=%v networks=%+v actions=%d", p2.Empty(), p2.Networks, len(p2.Actions))
	}
	if !strings.HasSuffix(p2.SummaryLine(), "Networks: 1 to create, 0 to remove.") {
		t.Errorf("summary: %s", p2.SummaryLine())
	}
	secs := staleSections(t, CheckFresh(saved, gone))
	if !strings.Contains(secs["node2"], "- network berth-demo ") || len(secs) != 1 {
		t.Errorf("stale sections: %v", secs)
	}

	// A replica disconnected by hand: the saved plan is stale, and a new
	// plan repairs it in place.
	drift := cloneLive(live)
	c := &drift.Nodes["node1"].Containers[0]
	c.Networks = []NetworkAttachment{{Name: "bridge"}}
	secs = staleSections(t, CheckFresh(saved, drift))
	if !strings.Contains(secs["node1"], "networks bridge()") {
		t.Errorf("stale sections: %v", secs)
	}
	p3, _ := Make(cfg, drift, Options{})
	if len(p3.Actions) != 1 || p3.Actions[0].Kind != Update || p3.Actions[0].Network == nil || !p3.Actions[0].Drift {
		t.Fatalf("drift repair: %+v", p3.Actions)
	}
	if r := p3.Actions[0].Network; r.Connect != "berth-demo" || strings.Join(r.Disconnect, ",") != "bridge" {
		t.Errorf("repair: %+v", r)
	}
	if p4, _ := Make(cfg, Simulate(drift, p3), Options{}); !p4.Empty() {
		t.Errorf("not converged after repair: %+v", p4.Actions)
	}
}

func networkLines(p *Plan) []string {
	var out []string
	for _, na := range p.Networks {
		out = append(out, string(na.Kind)+" "+na.Name+" on "+na.Node)
	}
	return out
}
