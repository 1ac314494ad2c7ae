package executor

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// networksOn lists, per node, the project's networks and the containers on
// berth-demo as "name:net1(alias,...)+net2".
func (fc *fakeCluster) networksOn() map[string][]string {
	out := map[string][]string{}
	for name, f := range fc.nodes {
		nets, err := f.Networks(context.Background(), "demo")
		if err != nil {
			fc.t.Fatal(err)
		}
		for _, n := range nets {
			out[name] = append(out[name], "network "+n.Name)
		}
		own, _, _ := f.Containers(context.Background(), "demo")
		for _, c := range own {
			var ns []string
			for _, a := range c.Networks {
				ns = append(ns, a.Name+"("+strings.Join(a.Aliases, ",")+")")
			}
			out[name] = append(out[name], c.Name+":"+strings.Join(ns, "+"))
		}
	}
	return out
}

// destroy plans and applies the project's removal.
func (fc *fakeCluster) destroy(cfg *config.Config) {
	fc.t.Helper()
	ctx := context.Background()
	lock, err := fc.sess.Lock(ctx, LockInfo{ApplyID: NewApplyID(), Holder: "test@host", PID: os.Getpid(), Since: time.Now()}, 0)
	if err != nil {
		fc.t.Fatal(err)
	}
	defer lock.Release(ctx)
	live := fc.sess.Gather(ctx)
	p, diags := planner.Make(cfg, live, planner.Options{Destroy: true})
	if diags.HasErrors() {
		fc.t.Fatal(diags)
	}
	if _, err := fc.sess.Apply(ctx, p, live, lock, ApplyOptions{Poll: 5 * time.Millisecond}); err != nil {
		fc.t.Fatal(err)
	}
}

// Every replica is created on the project network only, with its service
// and replica names as aliases; a node left without replicas loses the
// network at the commit; destroy removes it everywhere.
func TestApplyProjectNetwork(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webService("echo:v1", 3, ""))
	p, _, err := fc.apply(context.Background(), cfg, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Networks) != 3 {
		t.Fatalf("plan networks: %+v", p.Networks)
	}
	for _, node := range []string{"node1", "node2", "node3"} {
		got := fc.networksOn()[node]
		i := strings.TrimPrefix(node, "node")
		want := []string{"network berth-demo", "demo-web-" + i + ":berth-demo(web,web-" + i + ")"}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", node, got, want)
		}
	}
	if next := fc.replan(cfg); !next.Empty() {
		t.Fatalf("plan after apply is not empty: %+v %+v", next.Networks, next.Actions)
	}

	one := loadHCL(t, webService("echo:v1", 1, ""))
	if _, _, err := fc.apply(context.Background(), one, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	nets := fc.networksOn()
	if len(nets["node2"]) != 0 || len(nets["node3"]) != 0 || !slices.Equal(nets["node1"], []string{"network berth-demo", "demo-web-1:berth-demo(web,web-1)"}) {
		t.Fatalf("after scale down to 1: %v", nets)
	}
	fc.destroy(one)
	for node, got := range fc.networksOn() {
		if len(got) != 0 {
			t.Errorf("%s after destroy: %v", node, got)
		}
	}
}

// A failed apply removes the networks it created (empty once its new
// containers are gone); a network it did not create stays.
func TestApplyRollbackRemovesCreatedNetworks(t *testing.T) {
	fc := newFakeCluster(t)
	fc.nodes["node1"].AddNetwork("berth-demo", planner.NetworkLabels("demo"))
	broken := loadHCL(t, webService("echo:broken", 3, ""))
	p, _, err := fc.apply(context.Background(), broken, ApplyOptions{})
	var rb *RollbackError
	if !errors.As(err, &rb) || len(rb.Failed) != 0 {
		t.Fatalf("want a clean rollback, got %v", err)
	}
	if len(p.Networks) != 2 {
		t.Fatalf("plan networks: %+v", p.Networks)
	}
	nets := fc.networksOn()
	if !slices.Equal(nets["node1"], []string{"network berth-demo"}) || len(nets["node2"]) != 0 || len(nets["node3"]) != 0 {
		t.Fatalf("after rollback: %v", nets)
	}

	// A network that cannot be created fails the apply before any
	// container changes; the ones created before it are removed.
	fc.nodes["node3"].FailNext("CreateNetwork", errors.New("create network berth-demo: no free address pool"))
	v1 := loadHCL(t, webService("echo:v1", 3, ""))
	_, res, err := fc.apply(context.Background(), v1, ApplyOptions{})
	if !errors.As(err, &rb) || !strings.Contains(err.Error(), "node node3: create network berth-demo: no free address pool") || len(res.Done) != 0 {
		t.Fatalf("want a rollback naming node3, got %v (done %d)", err, len(res.Done))
	}
	nets = fc.networksOn()
	if !slices.Equal(nets["node1"], []string{"network berth-demo"}) || len(nets["node2"]) != 0 || len(nets["node3"]) != 0 {
		t.Fatalf("after a failed network create: %v", nets)
	}
	if r := fc.running(); len(r) != 0 {
		t.Fatalf("containers after a failed network create: %v", r)
	}
}

// A replica taken off the network by hand (and put on the default bridge)
// is repaired in place: joined again with its aliases, taken off the
// bridge. A repair that fails halfway is undone.
func TestApplyRepairsNetworkDrift(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webService("echo:v1", 3, ""))
	if _, _, err := fc.apply(context.Background(), cfg, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n2 := fc.nodes["node2"]
	c, _ := n2.Container("demo-web-2")
	if err := n2.DisconnectNetwork(ctx, "berth-demo", c.ID); err != nil {
		t.Fatal(err)
	}
	if err := n2.ConnectNetwork(ctx, "bridge", c.ID, nil); err != nil {
		t.Fatal(err)
	}
	p := fc.replan(cfg)
	if len(p.Actions) != 1 || p.Actions[0].Kind != planner.Update || !p.Actions[0].Drift || p.Actions[0].Network == nil {
		t.Fatalf("drift plan: %+v", p.Actions)
	}
	var txt strings.Builder
	p.WriteText(&txt)
	if !strings.Contains(txt.String(), "web.2 on node2 (update in place) [drift]: drift: the container is on bridge instead of network berth-demo") ||
		!strings.Contains(txt.String(), `~ networks: ["bridge"] -> ["berth-demo"]`) {
		t.Errorf("plan text:\n%s", txt.String())
	}

	// The repair fails after the join: undone, back on the bridge only.
	n2.FailNext("DisconnectNetwork", errors.New("disconnect: engine busy"))
	_, _, err := fc.apply(ctx, cfg, ApplyOptions{})
	var rb *RollbackError
	if !errors.As(err, &rb) || len(rb.Failed) != 0 || rb.Undone != 1 {
		t.Fatalf("want a clean rollback of 1 action, got %v", err)
	}
	if got := fc.networksOn()["node2"]; !slices.Equal(got, []string{"network berth-demo", "demo-web-2:bridge()"}) {
		t.Fatalf("after the undone repair: %v", got)
	}

	n2.ResetCalls()
	if _, _, err := fc.apply(ctx, cfg, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fc.networksOn()["node2"]; !slices.Equal(got, []string{"network berth-demo", "demo-web-2:berth-demo(web,web-2)"}) {
		t.Fatalf("after the repair: %v", got)
	}
	// Repaired in place: the same container, no resources update.
	for _, call := range n2.Calls() {
		if strings.HasPrefix(call, "CreateContainer") || strings.HasPrefix(call, "UpdateContainer") || strings.HasPrefix(call, "StopContainer") {
			t.Errorf("repair made %q", call)
		}
	}
	if next := fc.replan(cfg); !next.Empty() {
		t.Fatalf("plan after the repair is not empty: %+v", next.Actions)
	}
}
