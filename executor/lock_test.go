package executor

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/planner"
)

func lockLabels(t *testing.T, f *fake.Node) map[string]string {
	t.Helper()
	vs, err := f.Volumes(context.Background(), map[string]string{planner.LabelKind: planner.KindLock})
	if err != nil || len(vs) != 1 {
		t.Fatalf("%s: lock volumes %v, %v", f.Name(), vs, err)
	}
	return vs[0].Labels
}

// apply DIR takes the lock before it plans; SetPlan then records the plan's
// ID in it on every node, and a second run's error names the plan.
func TestLockSetPlan(t *testing.T) {
	fc := newFakeCluster(t)
	ctx := context.Background()
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	l, err := fc.sess.Lock(ctx, LockInfo{ApplyID: "a1b2c3d4", Holder: "alice@laptop", Host: "laptop", PID: 4242, Since: since}, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := LockInfo{ApplyID: "bbbb", Holder: "bob@x", Host: "x", PID: 1}
	_, err = fc.sess.Lock(ctx, other, 0)
	if err == nil || !strings.Contains(err.Error(), "by alice@laptop (pid 4242, since 2025-03-01T12:00:00Z, lock ID a1b2c3d4), still planning;") {
		t.Fatalf("lock held while planning: %v", err)
	}
	if err := l.SetPlan(ctx, "p9f8e7"); err != nil {
		t.Fatal(err)
	}
	if l.Info.PlanID != "p9f8e7" || l.Info.ApplyID != "a1b2c3d4" || !l.Info.Since.Equal(since) {
		t.Fatalf("lock info after SetPlan: %+v", l.Info)
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		got := LockInfoFromLabels(lockLabels(t, fc.nodes[n]))
		if got.PlanID != "p9f8e7" || got.ApplyID != "a1b2c3d4" || got.Holder != "alice@laptop" || got.PID != 4242 || !got.Since.Equal(since) {
			t.Fatalf("%s: lock %+v", n, got)
		}
	}
	_, err = fc.sess.Lock(ctx, other, 0)
	var le *LockedError
	want := "locked on node node1 by alice@laptop (pid 4242, since 2025-03-01T12:00:00Z, lock ID a1b2c3d4) for plan p9f8e7;"
	if !errors.As(err, &le) || !strings.Contains(err.Error(), want) || le.Holder.PlanID != "p9f8e7" {
		t.Fatalf("second run's error %v\nwant it to contain %q", err, want)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for n, f := range fc.nodes {
		if vs, _ := f.Volumes(ctx, map[string]string{planner.LabelKind: planner.KindLock}); len(vs) != 0 {
			t.Fatalf("%s: lock left after release: %v", n, vs)
		}
	}
}

// grabbingNode plays another run that takes the lock volume on this node in
// the instant SetPlan has removed it, and keeps it for keep more attempts
// of SetPlan's (-1: for good).
type grabbingNode struct {
	*fake.Node
	mu      sync.Mutex
	grabbed bool
	keep    int
	other   LockInfo
}

func (g *grabbingNode) RemoveVolume(ctx context.Context, name string) error {
	err := g.Node.RemoveVolume(ctx, name)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil && name == LockVolumeName("demo") && !g.grabbed {
		g.grabbed = true
		g.Node.CreateVolume(ctx, name, g.other.labels("demo"))
	}
	return err
}

func (g *grabbingNode) CreateVolume(ctx context.Context, name string, labels map[string]string) (planner.Volume, error) {
	v, err := g.Node.CreateVolume(ctx, name, labels)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil && g.grabbed && v.Labels[planner.LabelApply] == g.other.ApplyID && g.keep >= 0 {
		if g.keep == 0 {
			// The other run failed at the next node and let this one go.
			g.Node.RemoveVolume(ctx, name)
		}
		g.keep--
	}
	return v, err
}

func TestLockSetPlanAnotherRunInTheGap(t *testing.T) {
	prev := RelockWait
	RelockWait = 200 * time.Millisecond
	t.Cleanup(func() { RelockWait = prev })
	for _, keep := range []int{2, -1} {
		fc := newFakeCluster(t)
		other := LockInfo{ApplyID: "0ther", Holder: "bob@x", Host: "x", PID: 7}
		g := &grabbingNode{Node: fc.nodes["node2"], keep: keep, other: other}
		sess := NewSession("demo", map[string]Node{"node1": fc.nodes["node1"], "node2": g, "node3": fc.nodes["node3"]})
		ctx := context.Background()
		l, err := sess.Lock(ctx, LockInfo{ApplyID: "mine", Holder: "alice@laptop", Host: "laptop", PID: os.Getpid()}, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = l.SetPlan(ctx, "plan1")
		if keep >= 0 {
			// The other run let go: SetPlan took node2 back.
			if err != nil {
				t.Fatalf("keep %d: %v", keep, err)
			}
			for _, n := range []string{"node1", "node2", "node3"} {
				if got := LockInfoFromLabels(lockLabels(t, fc.nodes[n])); got.ApplyID != "mine" || got.PlanID != "plan1" {
					t.Fatalf("keep %d: %s: lock %+v", keep, n, got)
				}
			}
		} else {
			var le *LockedError
			if !errors.As(err, &le) || le.Node != "node2" || le.Holder.ApplyID != "0ther" {
				t.Fatalf("the other run kept node2: SetPlan returned %v", err)
			}
		}
		// Release removes only this run's locks: the other run's stays.
		l.Release(ctx)
		for _, n := range []string{"node1", "node3"} {
			if vs, _ := fc.nodes[n].Volumes(ctx, map[string]string{planner.LabelKind: planner.KindLock}); len(vs) != 0 {
				t.Fatalf("keep %d: %s: lock left after release: %v", keep, n, vs)
			}
		}
		vs, _ := fc.nodes["node2"].Volumes(ctx, map[string]string{planner.LabelKind: planner.KindLock})
		if keep >= 0 && len(vs) != 0 || keep < 0 && (len(vs) != 1 || vs[0].Labels[planner.LabelApply] != "0ther") {
			t.Fatalf("keep %d: node2's locks after release: %v", keep, vs)
		}
	}
}
