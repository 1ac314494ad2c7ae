package executor

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
)

// Applies within one second are ordered newest first, on one node and
// across nodes, and their times survive to the millisecond.
func TestAuditOrderWithinASecond(t *testing.T) {
	fc := newFakeCluster(t)
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 100e6, time.UTC)
	// The later apply has the smaller ID.
	first := AuditRecord{ApplyID: "ffff0000", PlanID: "p1", Holder: "a@h", Started: t0, Ended: t0.Add(300 * time.Millisecond), Result: "rolled back", Actions: 2}
	second := AuditRecord{ApplyID: "0000ffff", PlanID: "p2", Holder: "a@h", Started: t0.Add(400 * time.Millisecond), Ended: t0.Add(800 * time.Millisecond), Result: "applied", Actions: 2}
	if err := fc.sess.WriteAudit(ctx, []string{"node1", "node2"}, first); err != nil {
		t.Fatal(err)
	}
	if err := fc.sess.WriteAudit(ctx, []string{"node2", "node3"}, second); err != nil {
		t.Fatal(err)
	}
	got := Audit("demo", fc.sess.Gather(ctx))
	if len(got) != 2 || !reflect.DeepEqual(got[0], second) || !reflect.DeepEqual(got[1], first) {
		t.Fatalf("audit records, newest first:\n got %+v\nwant %+v, %+v", got, second, first)
	}
	vs, _ := fc.nodes["node2"].Volumes(ctx, map[string]string{planner.LabelKind: planner.KindAudit})
	if recs := AuditRecords("demo", vs); len(recs) != 2 || !reflect.DeepEqual(recs[0].AuditRecord, second) {
		t.Fatalf("node2's records: %+v", recs)
	}
}
