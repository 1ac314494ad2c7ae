package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/planner"
)

const fakeNodesHCL = `
project "demo" {}

node "node1" {
  address = "10.0.0.11"
  labels  = { zone = "a", role = "web" }
}

node "node2" {
  address = "10.0.0.12"
  labels  = { zone = "b", role = "web" }
}

node "node3" {
  address = "10.0.0.13"
  labels  = { zone = "c", role = "db" }
}
`

// fakeCluster is three fake nodes and a session over them.
type fakeCluster struct {
	t     *testing.T
	nodes map[string]*fake.Node
	sess  *Session
}

func newFakeCluster(t *testing.T) *fakeCluster {
	fc := &fakeCluster{t: t, nodes: map[string]*fake.Node{}}
	m := map[string]Node{}
	for _, n := range []string{"node1", "node2", "node3"} {
		f := fake.NewNode(n)
		for _, img := range []string{"echo:v1", "echo:v2", "echo:broken", "db:1"} {
			f.AddImage(img)
		}
		f.SetBehaviour("echo:broken", fake.Behaviour{Unhealthy: true, Logs: "listening\nbroken: giving up\n"})
		fc.nodes[n] = f
		m[n] = f
	}
	fc.sess = NewSession("demo", m)
	return fc
}

func loadHCL(t *testing.T, services string) *config.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(fakeNodesHCL+services), 0o644)
	cfg, diags := config.Load(dir, config.Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

const fastUpdate = `
  update {
    monitor = "0s"
  }
  health {
    http = "/healthz"
    port = 8080
    interval = "10ms"
  }
`

func webService(image string, replicas int, extra string) string {
	return `
service "web" {
  image    = "` + image + `"
  replicas = ` + itoa(replicas) + `
  port {
    target    = 8080
    published = 8080
  }
` + fastUpdate + extra + `}
`
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + string(rune('0'+i))) }

// apply plans cfg against the fakes and applies it under a fresh lock.
func (fc *fakeCluster) apply(ctx context.Context, cfg *config.Config, opts ApplyOptions) (*planner.Plan, *Result, error) {
	fc.t.Helper()
	lock, err := fc.sess.Lock(ctx, LockInfo{ApplyID: NewApplyID(), Holder: "test@host", PID: os.Getpid(), Since: time.Now()}, 0)
	if err != nil {
		fc.t.Fatal(err)
	}
	defer lock.Release(context.Background())
	live := fc.sess.Gather(ctx)
	p, diags := planner.Make(cfg, live, planner.Options{Interrupted: lock.Stale})
	if diags.HasErrors() {
		fc.t.Fatal(diags)
	}
	if opts.Poll == 0 {
		opts.Poll = 5 * time.Millisecond
	}
	res, err := fc.sess.Apply(ctx, p, live, lock, opts)
	return p, res, err
}

// replan returns the plan against the current state.
func (fc *fakeCluster) replan(cfg *config.Config) *planner.Plan {
	fc.t.Helper()
	p, diags := planner.Make(cfg, fc.sess.Gather(context.Background()), planner.Options{})
	if diags.HasErrors() {
		fc.t.Fatal(diags)
	}
	return p
}

// running lists "name image" of running containers of the project per node.
func (fc *fakeCluster) running() map[string][]string {
	out := map[string][]string{}
	for name, f := range fc.nodes {
		own, _, _ := f.Containers(context.Background(), "demo")
		for _, c := range own {
			out[name] = append(out[name], c.Name+" "+c.Image+" "+c.State)
		}
	}
	return out
}

func TestApplyFreshThenNoop(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webService("echo:v1", 3, "")+`
service "db" {
  image = "db:1"
  placement {
    constraint = node.labels.role == "db"
  }
}
`)
	p, res, err := fc.apply(context.Background(), cfg, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Done) != len(p.Actions) || len(p.Actions) != 4 {
		t.Fatalf("done %d of %d actions", len(res.Done), len(p.Actions))
	}
	for _, a := range p.Actions {
		c, ok := fc.nodes[a.Node].Container(a.Container)
		if !ok || c.State != "running" {
			t.Fatalf("%s not running on %s: %+v", a.Container, a.Node, c)
		}
	}
	if next := fc.replan(cfg); !next.Empty() {
		t.Fatalf("plan after apply is not empty: %+v", next.Actions)
	}
	// The lock is released.
	if vs, _ := fc.nodes["node1"].Volumes(context.Background(), map[string]string{planner.LabelKind: planner.KindLock}); len(vs) != 0 {
		t.Fatalf("lock left behind: %v", vs)
	}
}

func TestApplyUnhealthyRollsBackEverything(t *testing.T) {
	fc := newFakeCluster(t)
	v1 := loadHCL(t, webService("echo:v1", 3, ""))
	if _, _, err := fc.apply(context.Background(), v1, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := fc.running()
	broken := loadHCL(t, webService("echo:broken", 3, ""))
	_, res, err := fc.apply(context.Background(), broken, ApplyOptions{})
	var rb *RollbackError
	if !errors.As(err, &rb) || !res.RolledBack {
		t.Fatalf("want a rollback error, got %v", err)
	}
	var re *ReplicaError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "broken: giving up") || !strings.Contains(err.Error(), `service "web" replica 1 on node node1`) {
		t.Fatalf("error does not name the replica or show its logs: %v", err)
	}
	after := fc.running()
	if !equalRunning(before, after) {
		t.Fatalf("not restored:\nbefore %v\nafter  %v", before, after)
	}
	if next := fc.replan(v1); !next.Empty() {
		t.Fatalf("v1 plan not empty after rollback")
	}
}

func equalRunning(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := b[k]
		if len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}

func TestApplySecondServiceFailsFirstRolledBack(t *testing.T) {
	fc := newFakeCluster(t)
	two := func(a, b string) *config.Config {
		return loadHCL(t, `
service "api" {
  image    = "`+a+`"
  replicas = 2
`+fastUpdate+`}
service "web" {
  image      = "`+b+`"
  replicas   = 2
  depends_on = ["api"]
`+fastUpdate+`}
`)
	}
	if _, _, err := fc.apply(context.Background(), two("echo:v1", "echo:v1"), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := fc.running()
	p, _, err := fc.apply(context.Background(), two("echo:v2", "echo:broken"), ApplyOptions{})
	if err == nil {
		t.Fatal("apply of a broken service succeeded")
	}
	if p.Actions[0].Service != "api" {
		t.Fatalf("api should go first: %+v", p.Actions[0])
	}
	if after := fc.running(); !equalRunning(before, after) {
		t.Fatalf("api not rolled back:\nbefore %v\nafter  %v", before, after)
	}
}

func TestApplyCancelRollsBack(t *testing.T) {
	fc := newFakeCluster(t)
	v1 := loadHCL(t, webService("echo:v1", 3, ""))
	if _, _, err := fc.apply(context.Background(), v1, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := fc.running()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, res, err := fc.apply(ctx, loadHCL(t, webService("echo:v2", 3, "")), ApplyOptions{Hook: func(p string) {
		if p == "created" {
			n++
			if n == 2 {
				cancel()
			}
		}
	}})
	if err == nil || !res.RolledBack {
		t.Fatalf("cancelled apply: err %v, rolled back %v", err, res.RolledBack)
	}
	if after := fc.running(); !equalRunning(before, after) {
		t.Fatalf("not restored:\nbefore %v\nafter  %v", before, after)
	}
}

func TestApplyPauseLeavesWorkAndRecovers(t *testing.T) {
	fc := newFakeCluster(t)
	pause := `
  update {
    failure_action = "pause"
    monitor = "0s"
  }
  health {
    http = "/healthz"
    port = 8080
    interval = "10ms"
  }
`
	svc := func(img string) string {
		return `
service "web" {
  image    = "` + img + `"
  replicas = 2
` + pause + `}
`
	}
	if _, _, err := fc.apply(context.Background(), loadHCL(t, svc("echo:v1")), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := fc.running()
	_, _, err := fc.apply(context.Background(), loadHCL(t, svc("echo:broken")), ApplyOptions{})
	var pe *PausedError
	if !errors.As(err, &pe) {
		t.Fatalf("want a paused error, got %v", err)
	}
	// The next plan shows the interrupted apply; applying it restores v1.
	v1 := loadHCL(t, svc("echo:v1"))
	p := fc.replan(v1)
	if p.Interrupted == nil || len(p.Recovery) == 0 {
		t.Fatalf("paused apply not shown as interrupted: %+v", p)
	}
	if _, _, err := fc.apply(context.Background(), v1, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := fc.running(); !equalRunning(before, after) {
		t.Fatalf("not recovered:\nbefore %v\nafter  %v", before, after)
	}
}

func TestApplyPreflightMissingImageChangesNothing(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webService("echo:v1", 3, ""))
	if _, _, err := fc.apply(context.Background(), cfg, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range fc.nodes {
		f.ResetCalls()
	}
	// Plan against a live state where v2 is present, then remove it from
	// node2 before apply (the pre-flight must see the fresh state).
	lock, _ := fc.sess.Lock(context.Background(), LockInfo{ApplyID: "t1", Holder: "x", PID: os.Getpid()}, 0)
	defer lock.Release(context.Background())
	live := fc.sess.Gather(context.Background())
	p, _ := planner.Make(loadHCL(t, webService("echo:v2", 3, "")), live, planner.Options{})
	for i, img := range live.Nodes["node2"].Images {
		if len(img.Tags) > 0 && img.Tags[0] == "echo:v2" {
			live.Nodes["node2"].Images = append(live.Nodes["node2"].Images[:i], live.Nodes["node2"].Images[i+1:]...)
			break
		}
	}
	_, err := fc.sess.Apply(context.Background(), p, live, lock, ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "image echo:v2 is not on node node2") {
		t.Fatalf("pre-flight did not refuse: %v", err)
	}
	for n, f := range fc.nodes {
		for _, c := range f.Calls() {
			if strings.HasPrefix(c, "Stop") || strings.HasPrefix(c, "CreateContainer") || strings.HasPrefix(c, "Rename") || strings.HasPrefix(c, "RemoveContainer") {
				t.Fatalf("pre-flight failure changed %s: %s", n, c)
			}
		}
	}
}

func TestLockHeldAndStaleTakeover(t *testing.T) {
	fc := newFakeCluster(t)
	ctx := context.Background()
	host, _ := os.Hostname()
	a, err := fc.sess.Lock(ctx, LockInfo{ApplyID: "aaaa", Holder: "alice@" + host, Host: host, PID: os.Getpid()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fc.sess.Lock(ctx, LockInfo{ApplyID: "bbbb", Holder: "bob@x", Host: "x", PID: 1}, 0)
	var le *LockedError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "alice@") || !strings.Contains(err.Error(), "force-unlock aaaa") {
		t.Fatalf("second lock: %v", err)
	}
	// -lock-timeout waits for the holder.
	go func() { time.Sleep(300 * time.Millisecond); a.Release(ctx) }()
	b, err := fc.sess.Lock(ctx, LockInfo{ApplyID: "bbbb", Holder: "bob@x", Host: "x", PID: 1}, 5*time.Second)
	if err != nil {
		t.Fatalf("lock with timeout: %v", err)
	}
	b.Release(ctx)
	// A lock left by a dead process of this host is taken over.
	dead := LockInfo{ApplyID: "dead", Holder: "carol@" + host, Host: host, PID: 1 << 22}
	for _, f := range fc.nodes {
		f.CreateVolume(ctx, LockVolumeName("demo"), dead.labels("demo"))
		if err := setPlanOn(ctx, f, "demo", "dead", "deadplan"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := fc.sess.Lock(ctx, LockInfo{ApplyID: "cccc", Holder: "dave@" + host, Host: host, PID: os.Getpid()}, 0)
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	if len(c.Stale) != 1 || c.Stale[0] != "dead" {
		t.Fatalf("stale applies: %v", c.Stale)
	}
	c.Release(ctx)
	// The taken-over lock's plan went with it.
	if n := fc.volumesOf(planner.KindLockPlan); n != 0 {
		t.Fatalf("%d plan volumes left after the takeover", n)
	}
	// force-unlock removes a lock by ID, and its plan.
	for _, f := range fc.nodes {
		f.CreateVolume(ctx, LockVolumeName("demo"), LockInfo{ApplyID: "gone", Host: "elsewhere", PID: 5}.labels("demo"))
		if err := setPlanOn(ctx, f, "demo", "gone", "goneplan"); err != nil {
			t.Fatal(err)
		}
	}
	nodes, _, err := fc.sess.ForceUnlock(ctx, "gone")
	if err != nil || len(nodes) != 3 {
		t.Fatalf("force-unlock: %v %v", nodes, err)
	}
	if n := fc.volumesOf(planner.KindLockPlan) + fc.volumesOf(planner.KindLock); n != 0 {
		t.Fatalf("%d lock or plan volumes left after force-unlock", n)
	}
}

func TestRecoveryAfterKilledApply(t *testing.T) {
	for _, mode := range []string{planner.RecoverRollback, planner.RecoverForward} {
		t.Run(mode, func(t *testing.T) {
			fc := newFakeCluster(t)
			v1 := loadHCL(t, webService("echo:v1", 3, ""))
			if _, _, err := fc.apply(context.Background(), v1, ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			// Simulate a run killed after replacing replica 1: its old
			// container renamed aside and stopped, the new one running.
			f := fc.nodes["node1"]
			old, _ := f.Container("demo-web-1")
			ctx := context.Background()
			f.StopContainer(ctx, old.ID, 0)
			f.RenameContainer(ctx, old.ID, planner.AsideName("demo-web-1", "dead0001"))
			v2 := loadHCL(t, webService("echo:v2", 3, ""))
			p2, _ := planner.Make(v2, fc.sess.Gather(ctx), planner.Options{})
			spec := *p2.Actions[0].Spec
			spec.Labels[planner.LabelApply] = "dead0001"
			id, _ := f.CreateContainer(ctx, "demo-web-1", &spec)
			f.StartContainer(ctx, id)

			target := v1
			if mode == planner.RecoverForward {
				target = v2
			}
			p := planOpts(t, fc, target, planner.Options{Recover: mode})
			if p.Interrupted == nil || p.Interrupted.ApplyID != "dead0001" {
				t.Fatalf("interrupted apply not found: %+v", p.Interrupted)
			}
			lock, _ := fc.sess.Lock(ctx, LockInfo{ApplyID: "rec1", Holder: "x", PID: os.Getpid()}, 0)
			if _, err := fc.sess.Apply(ctx, p, fc.sess.Gather(ctx), lock, ApplyOptions{Poll: 5 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			lock.Release(ctx)
			if next := fc.replan(target); !next.Empty() {
				t.Fatalf("not converged after recovery: %+v", next.Actions)
			}
			// No container left aside, none duplicated.
			for n, l := range fc.running() {
				seen := map[string]bool{}
				for _, c := range l {
					name := strings.Fields(c)[0]
					if _, _, aside := planner.ParseAsideName(name); aside || seen[name] {
						t.Fatalf("%s: leftover %s", n, c)
					}
					seen[name] = true
				}
			}
		})
	}
}

func planOpts(t *testing.T, fc *fakeCluster, cfg *config.Config, o planner.Options) *planner.Plan {
	p, diags := planner.Make(cfg, fc.sess.Gather(context.Background()), o)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p
}

// A run killed after its commit (old containers removed, markers not yet)
// leaves only its commit markers: the next apply removes them, and so does
// ClearStaleMarkers when there is nothing else to do.
func TestStaleCommitMarkersCleared(t *testing.T) {
	fc := newFakeCluster(t)
	ctx := context.Background()
	mark := func() {
		for _, f := range fc.nodes {
			f.CreateVolume(ctx, markerName("demo", "dead0003"), map[string]string{
				planner.LabelKind: planner.KindCommit, planner.LabelProject: "demo", planner.LabelApply: "dead0003"})
		}
	}
	markers := func() (n int) {
		for _, f := range fc.nodes {
			vs, _ := f.Volumes(ctx, map[string]string{planner.LabelKind: planner.KindCommit})
			n += len(vs)
		}
		return n
	}
	mark()
	if _, _, err := fc.apply(ctx, loadHCL(t, webService("echo:v1", 3, "")), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := markers(); n != 0 {
		t.Fatalf("%d stale commit markers left after an apply", n)
	}
	mark()
	lock, err := fc.sess.Lock(ctx, LockInfo{ApplyID: "live0001", Holder: "x", PID: os.Getpid()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release(ctx)
	fc.sess.ClearStaleMarkers(ctx, fc.sess.Gather(ctx), lock)
	if n := markers(); n != 0 {
		t.Fatalf("%d stale commit markers left by ClearStaleMarkers", n)
	}
}

// The image of an old container a rollback would restart (a running one)
// must be on its node; a stopped old container is only renamed back by a
// rollback, so its image is not needed (docker rmi -f can delete the image
// of a stopped container, never that of a running one).
func TestApplyPreflightOldImageOnlyForRunning(t *testing.T) {
	for _, state := range []string{"running", "exited"} {
		t.Run(state, func(t *testing.T) {
			fc := newFakeCluster(t)
			ctx := context.Background()
			if _, _, err := fc.apply(ctx, loadHCL(t, webService("echo:v1", 3, "")), ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			if state == "exited" {
				fc.nodes["node2"].Exit("demo-web-2", 0)
			}
			lock, _ := fc.sess.Lock(ctx, LockInfo{ApplyID: "t2", Holder: "x", PID: os.Getpid()}, 0)
			defer lock.Release(ctx)
			live := fc.sess.Gather(ctx)
			p, diags := planner.Make(loadHCL(t, webService("echo:v2", 3, "")), live, planner.Options{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			st := live.Nodes["node2"]
			for i, img := range st.Images {
				if len(img.Tags) > 0 && img.Tags[0] == "echo:v1" {
					st.Images = append(st.Images[:i], st.Images[i+1:]...)
					break
				}
			}
			_, err := fc.sess.Apply(ctx, p, live, lock, ApplyOptions{Poll: 5 * time.Millisecond})
			refused := err != nil && strings.Contains(err.Error(), "of container demo-web-2 on node node2 is gone")
			if refused != (state == "running") {
				t.Fatalf("old container %s, its image gone: refused %v (%v)", state, refused, err)
			}
		})
	}
}
