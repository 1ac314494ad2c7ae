package executor

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
)

// The node set comes from the newest audit record that has one, wherever
// it was written; records from before berth recorded node sets are passed
// over.
func TestRecordedNodeSetNewest(t *testing.T) {
	fc := newFakeCluster(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	all := []planner.RecordedNode{{Name: "node1", Address: "10.0.0.11"}, {Name: "node2", Address: "10.0.0.12"},
		{Name: "node3", Address: "10.0.0.13", User: "root", IdentityFile: "/keys/id"}}
	if s := fc.sess.recordedNodeSet(ctx); s != nil {
		t.Fatalf("no records, got %+v", s)
	}
	rec := func(id string, at time.Time, nodes []planner.RecordedNode, on ...string) {
		t.Helper()
		if err := fc.sess.WriteAudit(ctx, on, AuditRecord{ApplyID: id, PlanID: "p", Holder: "a@h", Started: at, Ended: at,
			Result: ResultApplied, Nodes: nodes}); err != nil {
			t.Fatal(err)
		}
	}
	rec("a1", t0, all, "node1", "node2", "node3")
	rec("a2", t0.Add(time.Second), all[:2], "node1") // node3 removed; node2 unreachable then
	rec("a3", t0.Add(2*time.Second), nil, "node2")   // an older berth: no node set
	if got := fc.sess.recordedNodeSet(ctx); !reflect.DeepEqual(got, all[:2]) {
		t.Fatalf("node set %+v, want a2's %+v", got, all[:2])
	}
}

// An apply records the configured nodes and keeps a removed node until an
// apply that succeeded removed every container of the project there.
func TestNodeSetKeepsRemovedUntilEmpty(t *testing.T) {
	s := &Session{configured: []planner.RecordedNode{{Name: "node1", Address: "a1"}},
		removed: map[string]planner.RecordedNode{"node2": {Name: "node2", Address: "a2"}, "node3": {Name: "node3", Address: "a3"}},
		names:   []string{"node1", "node2", "node3"}}
	live := &planner.Live{Nodes: map[string]*planner.NodeState{
		"node1": {Name: "node1", Reachable: true},
		"node2": {Name: "node2", Reachable: true, Removed: true, Containers: []planner.Container{{ID: "c1"}, {ID: "c2"}}},
		"node3": {Name: "node3", Removed: true, Error: "node3: i/o timeout"},
	}}
	names := func(l []planner.RecordedNode) []string {
		var out []string
		for _, n := range l {
			out = append(out, n.Name)
		}
		return out
	}
	del := func(id string) planner.Action {
		return planner.Action{Kind: planner.Delete, Old: &planner.ContainerRef{ID: id, Node: "node2"}}
	}
	if got := names(s.NodeSet(live, []planner.Action{del("c1")})); !reflect.DeepEqual(got, []string{"node1", "node2", "node3"}) {
		t.Fatalf("one of node2's containers left: %v", got)
	}
	if got := names(s.NodeSet(live, []planner.Action{del("c1"), del("c2")})); !reflect.DeepEqual(got, []string{"node1", "node3"}) {
		t.Fatalf("node2 emptied, node3 unreachable: %v", got)
	}
	if got := (&Session{}).NodeSet(live, nil); got != nil {
		t.Fatalf("a session without a configuration records %v", got)
	}
}
