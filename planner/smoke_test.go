package planner

import (
	"bytes"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func expr(t testing.TB, src string) hcl.Expression {
	e, d := hclsyntax.ParseExpression([]byte(src), "test.hcl", hcl.Pos{Line: 1, Column: 1})
	if d.HasErrors() {
		t.Fatal(d)
	}
	return e
}

func svc(name, image string, replicas int) *config.Service {
	return &config.Service{Name: name, Image: image, Replicas: replicas, Restart: "unless-stopped",
		StopGracePeriod: 10 * time.Second, Pull: "missing",
		Update: config.Update{Parallelism: 1, Order: "start-first", FailureAction: "rollback", Monitor: 5 * time.Second}}
}

func threeNodes() []*config.Node {
	var out []*config.Node
	for i, z := range []string{"a", "b", "c"} {
		out = append(out, &config.Node{Name: "node" + string(rune('1'+i)), Address: "10.0.0." + string(rune('1'+i)), Labels: map[string]string{"zone": z}})
	}
	return out
}

func liveFor(nodes []*config.Node) *Live {
	l := &Live{Nodes: map[string]*NodeState{}}
	for _, n := range nodes {
		l.Nodes[n.Name] = &NodeState{Name: n.Name, Reachable: true, Engine: EngineFacts{CPUs: 2, MemoryBytes: 4 << 30, OS: "linux", Arch: "x86_64"},
			Images: []Image{{ID: "sha256:1111", Tags: []string{"echo:v1"}}, {ID: "sha256:2222", Tags: []string{"echo:v2"}}}}
	}
	return l
}

func TestSmoke(t *testing.T) {
	nodes := threeNodes()
	web := svc("web", "echo:v1", 3)
	web.Ports = []config.Port{{Target: 8080, Published: 8080, Protocol: "tcp"}}
	web.Placement.Spread = expr(t, "node.labels.zone")
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{web}}
	live := liveFor(nodes)
	p, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var b bytes.Buffer
	p.WriteText(&b)
	t.Log("\n" + b.String())
	live2 := Simulate(live, p)
	p2, _ := Make(cfg, live2, Options{})
	if !p2.Empty() {
		var b bytes.Buffer
		p2.WriteText(&b)
		t.Fatalf("not converged:\n%s", b.String())
	}
	web.Image = "echo:v2"
	p3, _ := Make(cfg, live2, Options{})
	b.Reset()
	p3.WriteText(&b)
	t.Log("\n" + b.String())
}
