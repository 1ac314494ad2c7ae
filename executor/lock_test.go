package executor

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/planner"
)

// heldLock is the lock f holds, with its plan.
func heldLock(t *testing.T, f *fake.Node) LockInfo {
	t.Helper()
	vs, err := f.Volumes(context.Background(), map[string]string{planner.LabelKind: planner.KindLock})
	if err != nil || len(vs) != 1 {
		t.Fatalf("%s: lock volumes %v, %v", f.Name(), vs, err)
	}
	all, _ := f.Volumes(context.Background(), map[string]string{planner.LabelProject: "demo"})
	li, _ := LockOn("demo", all)
	return li
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
		got := heldLock(t, fc.nodes[n])
		if got.PlanID != "p9f8e7" || got.ApplyID != "a1b2c3d4" || got.Holder != "alice@laptop" || got.PID != 4242 || !got.Since.Equal(since) {
			t.Fatalf("%s: lock %+v", n, got)
		}
	}
	// status and plan read it from the gathered state.
	gathered := Locks("demo", fc.sess.Gather(ctx))
	if len(gathered) != 3 {
		t.Fatalf("gathered locks: %+v", gathered)
	}
	for n, li := range gathered {
		if li.PlanID != "p9f8e7" || li.ApplyID != "a1b2c3d4" {
			t.Fatalf("%s: gathered lock %+v", n, li)
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
		if vs, _ := f.Volumes(ctx, map[string]string{planner.LabelProject: "demo"}); len(vs) != 0 {
			t.Fatalf("%s: lock left after release: %v", n, vs)
		}
	}
}

// interleavedNode runs between after each volume its run creates or
// removes on the node: another run's attempt, between SetPlan's steps.
type interleavedNode struct {
	*fake.Node
	between func(step string)
}

func (g *interleavedNode) CreateVolume(ctx context.Context, name string, labels map[string]string) (planner.Volume, error) {
	v, err := g.Node.CreateVolume(ctx, name, labels)
	g.between(g.Name() + ": create " + name)
	return v, err
}

func (g *interleavedNode) RemoveVolume(ctx context.Context, name string) error {
	err := g.Node.RemoveVolume(ctx, name)
	g.between(g.Name() + ": remove " + name)
	return err
}

// SetPlan leaves no moment in which another run can take the lock: after
// every step it takes, another run's Lock fails, naming this run's lock, on
// a one-node project (where taking that node is taking the whole lock) and
// on every node of a three-node one.
func TestLockSetPlanLeavesNoWindow(t *testing.T) {
	for _, names := range [][]string{{"node1"}, {"node1", "node2", "node3"}} {
		ctx := context.Background()
		fc := newFakeClusterOf(t, names...)
		other := LockInfo{ApplyID: "0ther", Holder: "bob@x", Host: "x", PID: 7}
		wrapped := map[string]Node{}
		steps, during := 0, false
		for _, nn := range names {
			wrapped[nn] = &interleavedNode{Node: fc.nodes[nn], between: func(step string) {
				if !during {
					return
				}
				steps++
				for _, on := range names {
					// Another run that tries this node alone.
					sess := NewSession("demo", map[string]Node{on: fc.nodes[on]})
					l, err := sess.Lock(ctx, other, 0)
					var le *LockedError
					if !errors.As(err, &le) || le.Holder.ApplyID != "mine" {
						t.Errorf("%d nodes, after %s: another run's lock on %s: %v", len(names), step, on, err)
					}
					if l != nil {
						l.Release(ctx)
					}
				}
			}}
		}
		sess := NewSession("demo", wrapped)
		l, err := sess.Lock(ctx, LockInfo{ApplyID: "mine", Holder: "alice@laptop", Host: "laptop", PID: os.Getpid()}, 0)
		if err != nil {
			t.Fatal(err)
		}
		during = true
		err = l.SetPlan(ctx, "plan1")
		during = false
		if err != nil {
			t.Fatalf("%d nodes: SetPlan: %v", len(names), err)
		}
		if steps == 0 {
			t.Fatal("SetPlan took no step the test could interleave with")
		}
		for _, nn := range names {
			if got := heldLock(t, fc.nodes[nn]); got.ApplyID != "mine" || got.PlanID != "plan1" {
				t.Fatalf("%s: lock %+v", nn, got)
			}
		}
		// A second SetPlan (a new plan of the same run) replaces the first.
		if err := l.SetPlan(ctx, "plan2"); err != nil || heldLock(t, fc.nodes[names[0]]).PlanID != "plan2" {
			t.Fatalf("second SetPlan: %v, %+v", err, heldLock(t, fc.nodes[names[0]]))
		}
		l.Release(ctx)
		for _, nn := range names {
			if vs, _ := fc.nodes[nn].Volumes(ctx, map[string]string{planner.LabelProject: "demo"}); len(vs) != 0 {
				t.Fatalf("%s: left after release: %v", nn, vs)
			}
		}
	}
}
