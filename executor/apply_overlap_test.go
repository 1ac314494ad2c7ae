package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/planner"
)

// startFirstWeb is three replicas, one per node, no published port,
// rolled out one at a time (three batches), start-first.
const startFirstWeb = `
service "web" {
  image    = "%s"
  replicas = 3
  placement {
    max_per_node = 1
  }
  update {
    parallelism = 1
    order       = "start-first"
    monitor     = "0s"
  }
  health {
    tcp      = true
    port     = 8080
    interval = "10ms"
  }
}
`

// stopHeld holds every StopContainer until released (or fails it with
// fail), and counts the creates.
type stopHeld struct {
	mu      sync.Mutex
	held    []chan struct{}
	creates int
	fail    error
}

type stopHeldNode struct {
	*fake.Node
	h *stopHeld
}

func (n *stopHeldNode) CreateContainer(ctx context.Context, name string, spec *planner.ContainerSpec) (string, error) {
	n.h.mu.Lock()
	n.h.creates++
	n.h.mu.Unlock()
	return n.Node.CreateContainer(ctx, name, spec)
}

func (n *stopHeldNode) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ch := make(chan struct{})
	n.h.mu.Lock()
	n.h.held = append(n.h.held, ch)
	fail := n.h.fail
	n.h.mu.Unlock()
	if fail != nil {
		return fail
	}
	<-ch
	return n.Node.StopContainer(ctx, id, grace)
}

func (h *stopHeld) counts() (held, creates int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held), h.creates
}

func (h *stopHeld) releaseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.held {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// holdStops puts every node of fc behind h.
func (fc *fakeCluster) holdStops(h *stopHeld) {
	m := map[string]Node{}
	for name, f := range fc.nodes {
		m[name] = &stopHeldNode{Node: f, h: h}
	}
	fc.sess = NewSession("demo", m)
}

// A start-first rolling update's batches overlap: the next batch starts
// while the old containers of the one before are still being stopped.
// With every stop held, all three batches create and gate their new
// replicas; the apply ends (and commits) only once the stops are done.
func TestApplyOverlapsOldStopsWithNextBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeCluster(t)
		ctx := context.Background()
		if _, _, err := fc.apply(ctx, loadHCL(t, fmt.Sprintf(startFirstWeb, "echo:v1")), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		h := &stopHeld{}
		fc.holdStops(h)
		type outcome struct {
			res *Result
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			_, res, err := fc.apply(ctx, loadHCL(t, fmt.Sprintf(startFirstWeb, "echo:v2")), ApplyOptions{})
			done <- outcome{res, err}
		}()
		synctest.Wait()
		held, creates := h.counts()
		if held != 3 || creates != 3 {
			t.Fatalf("with every old container's stop held: %d stops in flight, %d new containers created; want 3 and 3 (the batches overlap)", held, creates)
		}
		select {
		case o := <-done:
			t.Fatalf("the apply ended before the old containers were stopped: %v", o.err)
		default:
		}
		h.releaseAll()
		o := <-done
		if o.err != nil {
			t.Fatal(o.err)
		}
		if len(o.res.Done) != 3 {
			t.Fatalf("%d actions done, want 3", len(o.res.Done))
		}
		for name, f := range fc.nodes {
			own, _, _ := f.Containers(ctx, "demo")
			if len(own) != 1 || own[0].Image != "echo:v2" || !own[0].Running() || strings.Contains(own[0].Name, "_berth_old_") {
				t.Fatalf("%s after the update: %+v", name, own)
			}
		}
	})
}

// A stop that fails while the next batch runs fails the apply: the whole
// plan is rolled back (every old container runs again, every new one is
// gone), and the error names the old container.
func TestApplyOverlappedStopFailureRollsBack(t *testing.T) {
	fc := newFakeCluster(t)
	ctx := context.Background()
	if _, _, err := fc.apply(ctx, loadHCL(t, fmt.Sprintf(startFirstWeb, "echo:v1")), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := fc.running()
	h := &stopHeld{fail: errors.New("engine says no")}
	fc.holdStops(h)
	_, res, err := fc.apply(ctx, loadHCL(t, fmt.Sprintf(startFirstWeb, "echo:v2")), ApplyOptions{})
	var rb *RollbackError
	var re *ReplicaError
	if !errors.As(err, &rb) || !errors.As(err, &re) || !res.RolledBack || len(rb.Failed) != 0 ||
		!strings.Contains(err.Error(), "old container demo-web-") || !strings.Contains(err.Error(), "engine says no") {
		t.Fatalf("want a complete rollback naming the old container, got %v", err)
	}
	if after := fc.running(); !equalRunning(before, after) {
		t.Fatalf("not rolled back:\nbefore %v\nafter  %v", before, after)
	}
}

// A new container that publishes a host port an old container still being
// stopped on its node holds waits for that stop; one on another node, or
// publishing another port, does not.
func TestApplyWaitPortsFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sp := &stopping{ports: []planner.HostPort{{Protocol: "tcp", Port: 8080}}, done: make(chan struct{})}
		ap := &applier{stopping: map[string][]*stopping{"node1": {sp}}}
		port := func(n int) []planner.PortSpec { return []planner.PortSpec{{Target: 80, Published: n, Protocol: "tcp"}} }
		ctx := context.Background()
		for _, a := range []*planner.Action{{Node: "node2", Ports: port(8080)}, {Node: "node1", Ports: port(8081)}, {Node: "node1"}} {
			if err := ap.waitPortsFree(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		waited := make(chan error, 1)
		go func() { waited <- ap.waitPortsFree(ctx, &planner.Action{Node: "node1", Ports: port(8080)}) }()
		synctest.Wait()
		select {
		case <-waited:
			t.Fatal("a new container publishing 8080 on node1 did not wait for the old one's stop")
		default:
		}
		ap.mu.Lock()
		ap.stopping["node1"] = nil
		ap.mu.Unlock()
		close(sp.done)
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
	})
}
