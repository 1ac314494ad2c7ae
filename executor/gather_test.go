package executor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

func TestGatherWithFakes(t *testing.T) {
	ok := NewFakeNode("a")
	ok.AddImage("berth-test/echo:v1")
	ok.AddHostPort(planner.HostPort{Protocol: "tcp", IP: "0.0.0.0", Port: 80})
	own := ok.AddContainer(planner.Container{Name: "p-web-1", Labels: map[string]string{planner.LabelProject: "p", planner.LabelService: "web"}})
	foreign := ok.AddForeign(planner.Container{Name: "nginx", Ports: []planner.PortBinding{{HostPort: 443, ContainerPort: 443, Protocol: "tcp"}}})
	ok.AddForeign(planner.Container{Name: "quiet"}) // no ports, another name space: not reported
	ok.CreateVolume(context.Background(), "p-lock", map[string]string{planner.LabelProject: "p", planner.LabelKind: "lock"})
	ok.CreateVolume(context.Background(), "other", map[string]string{planner.LabelProject: "q"})

	// Each part of a node's gather failing makes the node unreachable:
	// never "no containers".
	var broken []*FakeNode
	for _, m := range []string{"Info", "Containers", "Images", "HostPorts", "Volumes"} {
		f := NewFakeNode("broken-" + strings.ToLower(m))
		f.AddContainer(planner.Container{Name: "p-web-2", Labels: map[string]string{planner.LabelProject: "p"}})
		f.SetError(m, errors.New("connection to 10.0.0.9:22 lost: no answer to keep-alive for 6s"))
		broken = append(broken, f)
	}
	nodes := map[string]Node{"a": ok}
	for _, f := range broken {
		nodes[f.Name()] = f
	}
	sess := NewSession("p", nodes)
	live := sess.Gather(context.Background())
	if len(live.Nodes) != 1+len(broken) {
		t.Fatalf("%d nodes in the result", len(live.Nodes))
	}
	a := live.Nodes["a"]
	if !a.Reachable || len(a.Containers) != 1 || a.Containers[0].ID != own.ID || len(a.Foreign) != 1 || a.Foreign[0].ID != foreign.ID ||
		len(a.Images) != 1 || len(a.Volumes) != 1 || a.Volumes[0].Name != "p-lock" || a.Engine.Version == "" {
		t.Errorf("node a: %+v", a)
	}
	// HostPorts: the added one and the foreign container's published port.
	if len(a.HostPorts) != 2 {
		t.Errorf("host ports: %+v", a.HostPorts)
	}
	for _, f := range broken {
		st := live.Nodes[f.Name()]
		if st.Reachable || st.Containers != nil || !strings.HasPrefix(st.Error, f.Name()+": ") || !strings.Contains(st.Error, "keep-alive") {
			t.Errorf("%s: %+v", f.Name(), st)
		}
	}
}

func TestSessionNodeErrors(t *testing.T) {
	sess := NewSession("p", map[string]Node{"a": NewFakeNode("a")})
	if _, err := sess.Node("a"); err != nil {
		t.Fatal(err)
	}
	_, err := sess.Node("zz")
	var ne *NodeError
	if !errors.As(err, &ne) || !strings.HasPrefix(err.Error(), "zz: ") {
		t.Errorf("unknown node: %v", err)
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: every gather fails, and is reported as such.
	live := sess.Gather(context.Background())
	if live.Nodes["a"].Reachable {
		t.Error("a closed node gathered as reachable")
	}
}

// A node that never connected appears in Gather with its connection error.
func TestGatherUnconnectedNode(t *testing.T) {
	cfg := testConfig("p", &config.Node{Name: "gone", Address: "127.0.0.1", Port: freePort(t), User: "root"})
	sess := Open(context.Background(), cfg, Options{HomeDir: t.TempDir(), Environ: []string{}, NoTTY: true})
	defer sess.Close()
	live := sess.Gather(context.Background())
	st := live.Nodes["gone"]
	if st == nil || st.Reachable || !strings.HasPrefix(st.Error, "gone: connect to ") {
		t.Errorf("%+v", st)
	}
}
