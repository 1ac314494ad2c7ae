package executor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/planner"
)

// recordView records what an operation shows and answers its question.
type recordView struct {
	answer   bool
	planned  []*planner.Plan
	diags    hcl.Diagnostics
	asked    int
	applying int
	mu       sync.Mutex // events come from every node at once
	events   []Event
}

func (v *recordView) Diagnostics(_ map[string]*hcl.File, d hcl.Diagnostics) {
	v.diags = append(v.diags, d...)
}
func (v *recordView) Planned(p *planner.Plan) error       { v.planned = append(v.planned, p); return nil }
func (v *recordView) Confirm(*planner.Plan) (bool, error) { v.asked++; return v.answer, nil }
func (v *recordView) Applying(*planner.Plan, time.Time)   { v.applying++ }
func (v *recordView) Event(e Event) {
	v.mu.Lock()
	v.events = append(v.events, e)
	v.mu.Unlock()
}
func (v *recordView) ImageOutput() ImageOutput { return ImageOutput{} }

// openNode is a fake node that outlives the session Run closes.
type openNode struct{ *fake.Node }

func (openNode) Close() error { return nil }

// run runs one operation over the cluster's fake nodes.
func (fc *fakeCluster) run(cfg *config.Config, req Request, v View) (*Outcome, error) {
	fc.t.Helper()
	req.Open = func(context.Context, *config.Config, Options) *Session {
		m := map[string]Node{}
		for name, f := range fc.nodes {
			m[name] = openNode{f}
		}
		return NewSession("demo", m)
	}
	req.Session.SSH.Environ = []string{"USER=tester"}
	// No local engine: the fake nodes hold every image.
	if req.ImageFacts == nil {
		req.ImageFacts = func(context.Context, *config.Config, bool) (images.Facts, error) {
			return images.Facts{BuildImages: map[string]string{}}, nil
		}
	}
	return Run(context.Background(), cfg, req, v)
}

// No lock or audit record is left by anything but an apply that ran.
func (fc *fakeCluster) volumesOf(kind string) int {
	n := 0
	for _, f := range fc.nodes {
		vs, _ := f.Volumes(context.Background(), map[string]string{planner.LabelKind: kind})
		n += len(vs)
	}
	return n
}

// Apply from the configuration: planned, asked, applied, audited, the lock
// released; then a plan shows nothing to do, status sees the replicas.
func TestRunApply(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webService("echo:v1", 3, ""))
	v := &recordView{answer: true}
	o, err := fc.run(cfg, Request{Op: OpApply}, v)
	if err != nil {
		t.Fatal(err)
	}
	if o.Result != ResultApplied || len(o.Done) != 3 || o.ApplyID == "" || o.Finished.Before(o.Started) || o.BytesSent == nil {
		t.Fatalf("outcome %+v", o)
	}
	if len(v.planned) != 1 || v.asked != 1 || v.applying != 1 || len(v.events) == 0 {
		t.Fatalf("view: planned %d, asked %d, applying %d, %d events", len(v.planned), v.asked, v.applying, len(v.events))
	}
	if fc.volumesOf(planner.KindLock) != 0 || fc.volumesOf(planner.KindAudit) != 3 {
		t.Fatalf("locks %d, audit records %d", fc.volumesOf(planner.KindLock), fc.volumesOf(planner.KindAudit))
	}
	audit := Audit("demo", fc.sess.Gather(context.Background()))
	if len(audit) != 1 || audit[0].ApplyID != o.ApplyID || audit[0].Holder[:7] != "tester@" || audit[0].Result != ResultApplied {
		t.Fatalf("audit %+v", audit)
	}

	v = &recordView{}
	o, err = fc.run(cfg, Request{Op: OpPlan}, v)
	if err != nil || !o.Plan.Empty() || len(v.planned) != 1 || v.asked != 0 {
		t.Fatalf("plan after apply: %v, %+v", err, o.Plan)
	}
	o, err = fc.run(cfg, Request{Op: OpStatus}, nil)
	if err != nil || len(o.Live.Nodes) != 3 {
		t.Fatalf("status: %v %+v", err, o)
	}
}

// A "no" changes nothing and leaves neither lock nor audit record; a plan
// that cannot be made is shown as diagnostics.
func TestRunApplyCancelledAndImpossible(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webService("echo:v1", 3, ""))
	o, err := fc.run(cfg, Request{Op: OpApply}, &recordView{answer: false})
	var ce *CancelledError
	if !errors.As(err, &ce) || err.Error() != "apply cancelled: nothing was changed" || o.Result != "" {
		t.Fatalf("cancelled: %v, %+v", err, o)
	}
	if fc.volumesOf(planner.KindLock)+fc.volumesOf(planner.KindAudit) != 0 || len(fc.running()) != 0 {
		t.Fatal("a cancelled apply left something")
	}
	cfg = loadHCL(t, `
service "cache" {
  image    = "echo:v1"
  replicas = 2
  placement {
    constraint = node.cpus >= 512
  }
}
`)
	v := &recordView{answer: true}
	_, err = fc.run(cfg, Request{Op: OpApply}, v)
	var de *DiagnosticsError
	if !errors.As(err, &de) || !v.diags.HasErrors() || !strings.Contains(v.diags[0].Summary, "Cannot place") || v.asked != 0 {
		t.Fatalf("impossible placement: %v, diags %v", err, v.diags)
	}
}

// A saved plan applies without a question; once the nodes changed it is
// refused as stale.
func TestRunApplySaved(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webService("echo:v1", 2, ""))
	o, err := fc.run(cfg, Request{Op: OpPlan}, &recordView{})
	if err != nil {
		t.Fatal(err)
	}
	saved := o.Plan
	v := &recordView{}
	o, err = fc.run(cfg, Request{Op: OpApplySaved, Saved: saved}, v)
	if err != nil || o.Result != ResultApplied || v.asked != 0 || len(v.planned) != 0 {
		t.Fatalf("saved plan: %v, %+v, asked %d", err, o, v.asked)
	}
	_, err = fc.run(cfg, Request{Op: OpApplySaved, Saved: saved}, &recordView{})
	var se *planner.StaleError
	if !errors.As(err, &se) {
		t.Fatalf("applied twice: %v, want a stale plan", err)
	}
	other := *saved
	other.Project = "other"
	if _, err := fc.run(cfg, Request{Op: OpApplySaved, Saved: &other}, &recordView{}); err == nil || !strings.Contains(err.Error(), `saved plan is for project "other"`) {
		t.Fatalf("another project's plan: %v", err)
	}
}

// Destroy removes every container; the lock of a run that is gone stops
// an apply until force-unlock removes it.
func TestRunDestroyAndForceUnlock(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webService("echo:v1", 2, ""))
	if _, err := fc.run(cfg, Request{Op: OpApply, AutoApprove: true}, &recordView{}); err != nil {
		t.Fatal(err)
	}
	o, err := fc.run(cfg, Request{Op: OpDestroy, AutoApprove: true}, &recordView{})
	if err != nil || o.Result != ResultApplied || len(fc.running()) != 0 {
		t.Fatalf("destroy: %v, %+v, running %v", err, o, fc.running())
	}
	li := LockInfo{ApplyID: "dead1234", Holder: "carol@elsewhere", Host: "elsewhere", PID: 1, Since: time.Now()}
	if _, err := fc.nodes["node2"].CreateVolume(context.Background(), LockVolumeName("demo"), li.labels("demo")); err != nil {
		t.Fatal(err)
	}
	_, err = fc.run(cfg, Request{Op: OpApply, AutoApprove: true}, &recordView{})
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.ApplyID != "dead1234" {
		t.Fatalf("apply with the lock held: %v", err)
	}
	// A wrong ID: the error names the lock that is held, per node.
	li.Since = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := fc.nodes["node2"].RemoveVolume(context.Background(), LockVolumeName("demo")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node2", "node3"} {
		if _, err := fc.nodes[n].CreateVolume(context.Background(), LockVolumeName("demo"), li.labels("demo")); err != nil {
			t.Fatal(err)
		}
	}
	_, err = fc.run(cfg, Request{Op: OpForceUnlock, LockID: "beef0000"}, nil)
	want := "no lock with ID beef0000 found on any reachable node; the project's lock is held:\n" +
		"  - on node node2 by carol@elsewhere (pid 1, since 2025-03-01T12:00:00Z, lock ID dead1234), still planning\n" +
		"  - on node node3 by carol@elsewhere (pid 1, since 2025-03-01T12:00:00Z, lock ID dead1234), still planning\n" +
		"if that run is gone for good: berth force-unlock dead1234"
	var nle *NoLockError
	if !errors.As(err, &nle) || err.Error() != want {
		t.Fatalf("force-unlock of a wrong ID:\n%v\nwant:\n%s", err, want)
	}
	if err := fc.nodes["node3"].RemoveVolume(context.Background(), LockVolumeName("demo")); err != nil {
		t.Fatal(err)
	}
	o, err = fc.run(cfg, Request{Op: OpForceUnlock, LockID: "dead1234"}, nil)
	if err != nil || len(o.Unlocked) != 1 || o.Unlocked[0] != "node2" {
		t.Fatalf("force-unlock: %v, %+v", err, o)
	}
}

// A failure under failure_action = "pause" comes back as typed data.
func TestRunPaused(t *testing.T) {
	fc := newFakeCluster(t)
	svc := func(image string) string {
		return `
service "web" {
  image    = "` + image + `"
  replicas = 2
  update {
    failure_action = "pause"
    monitor        = "0s"
  }
  health {
    http     = "/healthz"
    port     = 8080
    interval = "10ms"
  }
}
`
	}
	if _, err := fc.run(loadHCL(t, svc("echo:v1")), Request{Op: OpApply, AutoApprove: true}, &recordView{}); err != nil {
		t.Fatal(err)
	}
	o, err := fc.run(loadHCL(t, svc("echo:broken")), Request{Op: OpApply, AutoApprove: true}, &recordView{})
	var pe *PausedError
	if !errors.As(err, &pe) || o.Result != ResultPaused || pe.ApplyID != o.ApplyID || pe.Service != "web" || pe.Node == "" || pe.Container == "" {
		t.Fatalf("paused: %v, %+v", err, o)
	}
}

// A plan made while a node could not be read covers the other nodes only:
// apply and destroy refuse it unless AllowUnreachable, with nothing
// changed and no lock left; allowed, the replicas node2 cannot hold (one
// per node: the service publishes a port) are created on node1 and node3.
func TestRunRefusesUnreachableUnlessAllowed(t *testing.T) {
	fc := newFakeCluster(t)
	fc.nodes["node2"].SetError("Info", errors.New("connection refused"))
	cfg := loadHCL(t, webService("echo:v1", 3, ""))
	for _, op := range []Op{OpApply, OpDestroy} {
		v := &recordView{answer: true}
		o, err := fc.run(cfg, Request{Op: op, AutoApprove: true}, v)
		var ue *UnreachableError
		if !errors.As(err, &ue) || len(ue.Nodes) != 1 || ue.Nodes[0].Name != "node2" || !strings.Contains(err.Error(), "node node2 ") ||
			!strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("%s: want an UnreachableError naming node2, got %v", op, err)
		}
		if o.Result != "" || len(v.planned) != 1 || v.applying != 0 {
			t.Fatalf("%s: outcome %+v, view planned %d, applying %d", op, o, len(v.planned), v.applying)
		}
	}
	for name, f := range fc.nodes {
		if cs, _, _ := f.Containers(context.Background(), "demo"); len(cs) != 0 {
			t.Fatalf("%s has containers after a refused apply: %v", name, cs)
		}
	}
	if fc.volumesOf(planner.KindLock) != 0 || fc.volumesOf(planner.KindAudit) != 0 {
		t.Fatalf("locks %d, audit records %d after a refused apply", fc.volumesOf(planner.KindLock), fc.volumesOf(planner.KindAudit))
	}
	// A saved plan is refused before any lock.
	o, err := fc.run(cfg, Request{Op: OpPlan}, &recordView{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.run(cfg, Request{Op: OpApplySaved, Saved: o.Plan}, &recordView{}); !errors.As(err, new(*UnreachableError)) {
		t.Fatalf("saved plan: want an UnreachableError, got %v", err)
	}

	o, err = fc.run(cfg, Request{Op: OpApply, AutoApprove: true, AllowUnreachable: true}, &recordView{})
	if err != nil || o.Result != ResultApplied {
		t.Fatalf("allowed: %v, %+v", err, o)
	}
	var on []string
	for _, a := range o.Done {
		on = append(on, a.Node)
	}
	if slices.Sort(on); !slices.Equal(on, []string{"node1", "node3"}) {
		t.Fatalf("created on %v, want node1 and node3", on)
	}
}
