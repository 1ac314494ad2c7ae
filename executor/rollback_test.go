package executor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/planner"
)

// images lists the image of every running replica of the project.
func (fc *fakeCluster) images() map[string]int {
	out := map[string]int{}
	for _, f := range fc.nodes {
		own, _, _ := f.Containers(context.Background(), "demo")
		for _, c := range own {
			if c.State == "running" {
				out[c.Image]++
			}
		}
	}
	return out
}

// Apply v1, apply v2, rollback: the replicas run v1 again (its image ID,
// through the ordinary plan and apply), the configuration still wishes v2,
// a second rollback returns to v2, -to names a revision, and a revision
// whose image left every node is refused naming it.
func TestRollback(t *testing.T) {
	fc := newFakeCluster(t)
	v1 := loadHCL(t, webService("echo:v1", 3, ""))
	v2 := loadHCL(t, webService("echo:v2", 3, ""))
	auto := func(req Request) Request { req.AutoApprove = true; return req }
	o1, err := fc.run(v1, auto(Request{Op: OpApply}), &recordView{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.run(v2, auto(Request{Op: OpApply}), &recordView{}); err != nil {
		t.Fatal(err)
	}
	rec := Audit("demo", fc.sess.Gather(context.Background()))
	if len(rec) != 2 || rec[1].Revisions["web"] == nil || rec[1].Revisions["web"].Image != "echo:v1" ||
		!slices.Equal(rec[1].Revisions["web"].ImageIDs, []string{imageIDOf(fc, "echo:v1")}) {
		t.Fatalf("audit revisions: %+v", rec)
	}

	v := &recordView{}
	o, err := fc.run(v2, auto(Request{Op: OpApply, Rollback: true}), v)
	if err != nil {
		t.Fatal(err)
	}
	if o.Plan.RollbackTo != o1.ApplyID || len(o.Plan.Actions) != 3 || o.Plan.Actions[0].Kind != planner.Replace {
		t.Fatalf("rollback plan: to %q, %+v", o.Plan.RollbackTo, o.Plan.Actions)
	}
	if got := fc.images(); got["echo:v1"] != 3 || len(got) != 1 {
		t.Fatalf("after rollback: %v", got)
	}
	// The configuration is unchanged: a plan wants v2 back.
	o, err = fc.run(v2, Request{Op: OpPlan}, &recordView{})
	if err != nil || len(o.Plan.Actions) != 3 || o.Plan.Actions[0].Spec.Image != "echo:v2" {
		t.Fatalf("plan after rollback: %v %+v", err, o.Plan)
	}

	// The rollback was itself an apply: rolling back again returns to v2.
	if _, err := fc.run(v2, auto(Request{Op: OpApply, Rollback: true}), &recordView{}); err != nil {
		t.Fatal(err)
	}
	if got := fc.images(); got["echo:v2"] != 3 {
		t.Fatalf("after the second rollback: %v", got)
	}
	// -to names the revision (a prefix of its ID will do).
	if _, err := fc.run(v2, auto(Request{Op: OpApply, Rollback: true, RollbackTo: o1.ApplyID[:6]}), &recordView{}); err != nil {
		t.Fatal(err)
	}
	if got := fc.images(); got["echo:v1"] != 3 {
		t.Fatalf("after rollback -to: %v", got)
	}
	if _, err := fc.run(v2, auto(Request{Op: OpApply}), &recordView{}); err != nil {
		t.Fatal(err)
	}

	// echo:v1 gone from every node (and no local engine): refused, naming it.
	for _, f := range fc.nodes {
		f.RemoveImage("echo:v1")
	}
	v = &recordView{}
	_, err = fc.run(v2, auto(Request{Op: OpApply, Rollback: true, RollbackTo: o1.ApplyID}), v)
	var de *DiagnosticsError
	if !errors.As(err, &de) || len(v.diags) == 0 || !strings.Contains(v.diags[0].Summary, "image echo:v1") ||
		!strings.Contains(v.diags[0].Summary, "no longer on node1, node2, node3") {
		t.Fatalf("rollback to a removed image: %v %v", err, v.diags)
	}
	if got := fc.images(); got["echo:v2"] != 3 {
		t.Fatalf("a refused rollback changed something: %v", got)
	}

	_, err = fc.run(v2, auto(Request{Op: OpApply, Rollback: true, RollbackTo: "nosuchid"}), &recordView{})
	if err == nil || !strings.Contains(err.Error(), "no audit record of apply nosuchid") {
		t.Fatalf("-to nosuchid: %v", err)
	}
}

// A rollback whose replicas fail their health check is rolled back itself,
// like any apply: v2 runs on, and the record says so.
func TestRollbackThatFailsIsRolledBack(t *testing.T) {
	fc := newFakeCluster(t)
	v1 := loadHCL(t, webService("echo:v1", 3, ""))
	v2 := loadHCL(t, webService("echo:v2", 3, ""))
	for _, cfg := range []*config.Config{v1, v2} {
		if _, err := fc.run(cfg, Request{Op: OpApply, AutoApprove: true}, &recordView{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fc.nodes {
		f.SetBehaviour("echo:v1", fake.Behaviour{Unhealthy: true, Logs: "v1: giving up\n"})
	}
	o, err := fc.run(v2, Request{Op: OpApply, AutoApprove: true, Rollback: true}, &recordView{})
	if err == nil || o.Result != ResultRolledBack {
		t.Fatalf("an unhealthy rollback: %v, result %q", err, o.Result)
	}
	if got := fc.images(); got["echo:v2"] != 3 || len(got) != 1 {
		t.Fatalf("after the failed rollback: %v", got)
	}
	rec := Audit("demo", fc.sess.Gather(context.Background()))
	if rec[0].Result != ResultRolledBack || rec[0].RollbackTo == "" || rec[0].Revisions != nil {
		t.Fatalf("the failed rollback's record: %+v", rec[0])
	}
}

// With one successful apply there is nothing to roll back to.
func TestRollbackNeedsAnEarlierApply(t *testing.T) {
	fc := newFakeCluster(t)
	v1 := loadHCL(t, webService("echo:v1", 3, ""))
	if _, err := fc.run(v1, Request{Op: OpApply, AutoApprove: true}, &recordView{}); err != nil {
		t.Fatal(err)
	}
	_, err := fc.run(v1, Request{Op: OpApply, AutoApprove: true, Rollback: true}, &recordView{})
	if err == nil || !strings.Contains(err.Error(), "no earlier successful apply") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("rollback after one apply: %v", err)
	}
}

func imageIDOf(fc *fakeCluster, ref string) string {
	img, _ := fc.nodes["node1"].Image(ref)
	return img.ID
}
