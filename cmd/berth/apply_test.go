package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/planner"
)

// The commands run here over fake nodes (fake.Node), through Run,
// as a user would run them; newSession is replaced so that no SSH
// connection is made.

const cliNodesHCL = `
project "demo" {}

node "node1" {
  address = "10.0.0.11"
}

node "node2" {
  address = "10.0.0.12"
}

node "node3" {
  address = "10.0.0.13"
}
`

func cliWeb(image string) string {
	return `
service "web" {
  image    = "` + image + `"
  replicas = 3
  port {
    target    = 8080
    published = 8080
  }
  update {
    monitor = "0s"
  }
  health {
    http     = "/healthz"
    port     = 8080
    interval = "10ms"
  }
}
`
}

// keepOpen is a fake node that survives the session's Close, so that one
// test can run several commands over the same nodes.
type keepOpen struct{ *fake.Node }

func (keepOpen) Close() error { return nil }

type cliCluster struct {
	t     *testing.T
	dir   string
	nodes map[string]*fake.Node
	// wrap, if set, replaces a node in the sessions commands open.
	wrap func(name string, n executor.Node) executor.Node
}

// newCLICluster writes a configuration of three nodes plus services into a
// fresh directory and makes the commands reach three fake nodes holding
// the echo images (echo:broken fails its health check).
func newCLICluster(t *testing.T, services string) *cliCluster {
	t.Helper()
	tc := &cliCluster{t: t, dir: filepath.Join(t.TempDir(), "demo"), nodes: map[string]*fake.Node{}}
	for _, n := range []string{"node1", "node2", "node3"} {
		f := fake.NewNode(n)
		for _, img := range []string{"echo:v1", "echo:v2", "echo:broken"} {
			f.AddImage(img)
		}
		f.SetBehaviour("echo:broken", fake.Behaviour{Unhealthy: true, Logs: "broken: giving up\n"})
		tc.nodes[n] = f
	}
	tc.write(services)
	// The local engine: none (image facts are read from it while planning).
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	prev := newSession
	t.Cleanup(func() { newSession = prev })
	newSession = func(ctx context.Context, cfg *config.Config, opts executor.Options) *executor.Session {
		m := map[string]executor.Node{}
		for name, f := range tc.nodes {
			var n executor.Node = keepOpen{f}
			if tc.wrap != nil {
				n = tc.wrap(name, n)
			}
			m[name] = n
		}
		return executor.NewSession(cfg.Project.Name, m)
	}
	return tc
}

func (tc *cliCluster) write(services string) {
	tc.t.Helper()
	if err := os.MkdirAll(tc.dir, 0o755); err != nil {
		tc.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tc.dir, "main.hcl"), []byte(cliNodesHCL+services), 0o644); err != nil {
		tc.t.Fatal(err)
	}
}

type cliResult struct {
	code     int
	out, err string
}

func (r cliResult) String() string {
	return "exit " + itoa(r.code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// run runs berth with args; s supplies In and the terminal flags (Out,
// Err and Environ are set here).
func (tc *cliCluster) run(s Streams, args ...string) cliResult {
	tc.t.Helper()
	var out, errb bytes.Buffer
	s.Out, s.Err = &out, &errb
	if s.In == nil {
		s.In = strings.NewReader("")
	}
	if s.Environ == nil {
		s.Environ = []string{"USER=tester", "NO_COLOR=1"}
	}
	code := Run(context.Background(), args, s)
	return cliResult{code: code, out: out.String(), err: errb.String()}
}

// mutations lists the calls that change containers, per node.
func (tc *cliCluster) mutations() []string {
	var out []string
	for name, f := range tc.nodes {
		for _, c := range f.Calls() {
			for _, m := range []string{"CreateContainer", "StartContainer", "StopContainer", "RenameContainer", "RemoveContainer", "UpdateContainer", "LoadImage", "PullImage"} {
				if strings.HasPrefix(c, m+" ") || c == m {
					out = append(out, name+": "+c)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func (tc *cliCluster) resetCalls() {
	for _, f := range tc.nodes {
		f.ResetCalls()
	}
}

// volumes returns the volumes of berth's kind on a node.
func (tc *cliCluster) volumes(node, kind string) []planner.Volume {
	tc.t.Helper()
	vs, err := tc.nodes[node].Volumes(context.Background(), map[string]string{planner.LabelKind: kind})
	if err != nil {
		tc.t.Fatal(err)
	}
	return vs
}

func (tc *cliCluster) audit(node string) []executor.AuditRecord {
	var out []executor.AuditRecord
	for _, r := range executor.Audit("demo", &planner.Live{Nodes: map[string]*planner.NodeState{
		node: {Name: node, Reachable: true, Volumes: tc.volumes(node, planner.KindAudit)}}}) {
		out = append(out, r)
	}
	return out
}

// jsonResult finds the result line of apply -json.
func jsonResult(t *testing.T, out string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		var doc map[string]any
		if json.Unmarshal([]byte(l), &doc) == nil && doc["type"] == "result" {
			return doc
		}
	}
	t.Fatalf("no result line in:\n%s", out)
	return nil
}

// A failed apply leaves its audit record on every node it touched, also when
// no action completed (issue 6: "an audit record per apply on every node
// touched (who, when, plan ID, result)").
func TestApplyAuditRecordWhenNothingCompleted(t *testing.T) {
	for _, tt := range []struct {
		name, image, result, why string
	}{
		// Every replica of the first batch fails its health check: the
		// rollback removes them; no action completed.
		{"rolled back", "echo:broken", "rolled back", "not healthy"},
		// No node has the image and no registry has it: the image step
		// fails before any container changes.
		{"failed", "echo:v3", "failed", "image transfer failed before any container changed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newCLICluster(t, cliWeb(tt.image))
			r := tc.run(Streams{}, "apply", "-auto-approve", "-json", tc.dir)
			if r.code != 1 {
				t.Fatalf("want exit 1:\n%s", r)
			}
			res := jsonResult(t, r.out)
			if res["result"] != tt.result || !strings.Contains(res["error"].(string), tt.why) {
				t.Fatalf("result %v, error %v; want %q, %q", res["result"], res["error"], tt.result, tt.why)
			}
			if done, _ := res["done"].([]any); len(done) != 0 {
				t.Fatalf("actions completed (the case needs none): %v", done)
			}
			for _, n := range []string{"node1", "node2", "node3"} {
				recs := tc.audit(n)
				if len(recs) != 1 {
					t.Fatalf("%s: %d audit records, want 1: %+v", n, len(recs), recs)
				}
				a := recs[0]
				if a.Result != tt.result || a.PlanID == "" || a.PlanID != res["plan_id"] || a.ApplyID != res["apply_id"] ||
					!strings.HasPrefix(a.Holder, "tester@") || a.Started.IsZero() || a.Ended.Before(a.Started) || a.Actions != 3 {
					t.Fatalf("%s: audit record %+v; result line %v", n, a, res)
				}
			}
		})
	}
}

// A rollback that could not undo everything is reported as such, in the
// result line and the audit record, never as "rolled back" (which promises
// the cluster is as it was).
func TestApplyRollbackIncompleteResult(t *testing.T) {
	tc := newCLICluster(t, cliWeb("echo:v1"))
	if r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
		t.Fatalf("first apply:\n%s", r)
	}
	tc.write(cliWeb("echo:broken"))
	// The undo of the failed replace removes the new container: refuse it on
	// every node, so whichever replica fails first cannot be undone.
	for _, f := range tc.nodes {
		f.SetError("RemoveContainer", errors.New("engine refused the removal"))
	}
	r := tc.run(Streams{}, "apply", "-auto-approve", "-json", tc.dir)
	if r.code != 1 {
		t.Fatalf("want exit 1:\n%s", r)
	}
	res := jsonResult(t, r.out)
	if res["result"] != "rollback incomplete" || !strings.Contains(res["error"].(string), "Rollback incomplete") {
		t.Fatalf("result %v, error %v; want \"rollback incomplete\"", res["result"], res["error"])
	}
	found := false
	for _, n := range []string{"node1", "node2", "node3"} {
		for _, a := range tc.audit(n) {
			if a.ApplyID == res["apply_id"] {
				found = true
				if a.Result != "rollback incomplete" {
					t.Fatalf("%s: audit result %q, want \"rollback incomplete\"", n, a.Result)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no audit record of apply %v", res["apply_id"])
	}
}

// promptReader answers the confirmation prompt with answer; at the moment
// berth reads the answer it calls at (to look at the nodes mid-apply).
type promptReader struct {
	answer string
	at     func()
	r      io.Reader
}

func (p *promptReader) Read(b []byte) (int, error) {
	if p.r == nil {
		if p.at != nil {
			p.at()
		}
		p.r = strings.NewReader(p.answer)
	}
	return p.r.Read(b)
}

// berth apply DIR takes the lock before planning; once the plan is made the
// lock names it on every node (seen here while the prompt waits), and a
// second run that finds the lock is told who holds it and for which plan.
func TestApplyDirLockCarriesPlanID(t *testing.T) {
	tc := newCLICluster(t, cliWeb("echo:v1"))
	locks := map[string]executor.LockInfo{}
	var second cliResult
	in := &promptReader{answer: "yes\n", at: func() {
		for _, n := range []string{"node1", "node2", "node3"} {
			if vs := tc.volumes(n, planner.KindLock); len(vs) != 1 {
				t.Fatalf("%s: lock volumes during the prompt: %v", n, vs)
			}
			vs := append(tc.volumes(n, planner.KindLock), tc.volumes(n, planner.KindLockPlan)...)
			locks[n], _ = executor.LockOn("demo", vs)
		}
		second = tc.run(Streams{}, "apply", "-auto-approve", tc.dir)
	}}
	r := tc.run(Streams{In: in, InTerminal: true}, "apply", tc.dir)
	if r.code != 0 {
		t.Fatalf("apply:\n%s", r)
	}
	recs := tc.audit("node1")
	if len(recs) != 1 || recs[0].Result != "applied" || recs[0].PlanID == "" {
		t.Fatalf("audit: %+v", recs)
	}
	plan := recs[0].PlanID
	for n, li := range locks {
		if li.PlanID != plan || li.ApplyID != recs[0].ApplyID || !strings.HasPrefix(li.Holder, "tester@") || li.PID != os.Getpid() || li.Since.IsZero() {
			t.Fatalf("%s: lock during the prompt %+v; the plan applied was %s (apply %s)", n, li, plan, recs[0].ApplyID)
		}
	}
	// The second run failed at once, naming who, pid, when, lock and plan.
	want := "locked on node node1 by tester@"
	wantTail := ", lock ID " + recs[0].ApplyID + ") for plan " + plan + ";"
	if second.code != 1 || !strings.Contains(second.err, want) || !strings.Contains(second.err, "(pid "+itoa(os.Getpid())+", since ") ||
		!strings.Contains(second.err, wantTail) || !strings.Contains(second.err, "berth force-unlock "+recs[0].ApplyID) {
		t.Fatalf("second apply during the prompt:\n%s\nwant %q ... %q", second, want, wantTail)
	}
	// The lock is gone once the apply is done.
	for _, n := range []string{"node1", "node2", "node3"} {
		if vs := tc.volumes(n, planner.KindLock); len(vs) != 0 {
			t.Fatalf("%s: lock left: %v", n, vs)
		}
	}
}

func pauseWeb(image string) string {
	return `
service "web" {
  image    = "` + image + `"
  replicas = 3
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

// containers lists "node name image" of the project's containers.
func (tc *cliCluster) containers() []string {
	var out []string
	for name, f := range tc.nodes {
		own, _, _ := f.Containers(context.Background(), "demo")
		for _, c := range own {
			out = append(out, name+" "+c.Name+" "+c.Image)
		}
	}
	sort.Strings(out)
	return out
}

// failure_action = "pause": the error says how to roll back and how to
// resume, as commands for this configuration; each command, run as shown,
// does what the message says.
func TestApplyPauseSaysHowToRollBackOrResume(t *testing.T) {
	for _, path := range []string{"roll back", "resume"} {
		t.Run(path, func(t *testing.T) {
			tc := newCLICluster(t, pauseWeb("echo:v1"))
			if r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
				t.Fatal(r)
			}
			// v2 fails its health check on node2 only: replica 1 (node1)
			// is replaced, replica 2 fails, replica 3 is not reached.
			tc.nodes["node2"].SetBehaviour("echo:v2", fake.Behaviour{Unhealthy: true})
			tc.write(pauseWeb("echo:v2"))
			r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir)
			if r.code != 1 {
				t.Fatalf("want exit 1:\n%s", r)
			}
			rollBack := "berth apply " + tc.dir
			resume := "berth apply -recover=forward " + tc.dir
			for _, want := range []string{
				`service "web" replica 2 on node node2 (container demo-web-2)`,
				`Apply paused (failure_action = "pause"): nothing was rolled back.`,
				"\n  To roll back: " + rollBack + "\n",
				"\n  To resume:    " + resume + "\n",
			} {
				if !strings.Contains(r.err, want) {
					t.Fatalf("the pause message lacks %q:\n%s", want, r.err)
				}
			}
			if a := tc.audit("node1"); len(a) != 2 || a[0].Result != "paused" {
				t.Fatalf("audit: %+v", a)
			}
			cmd := rollBack
			if path == "roll back" {
				// "put it back as it was"
				tc.write(pauseWeb("echo:v1"))
			} else {
				cmd = resume
			}
			args := append([]string{"apply", "-auto-approve"}, strings.Fields(cmd)[2:]...)
			if r := tc.run(Streams{}, args...); r.code != 0 {
				t.Fatalf("%s:\n%s", cmd, r)
			}
			want := []string{"node1 demo-web-1 echo:v1", "node2 demo-web-2 echo:v1", "node3 demo-web-3 echo:v1"}
			if path == "resume" {
				// The new containers kept (the failed one on node2 too), the
				// old ones removed, replica 3 replaced.
				want = []string{"node1 demo-web-1 echo:v2", "node2 demo-web-2 echo:v2", "node3 demo-web-3 echo:v2"}
			}
			if got := tc.containers(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("after %q:\n%s\nwant:\n%s", cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// On a terminal apply asks, and only "yes" goes on: any other answer
// cancels with nothing changed and the lock released. Without a terminal
// it refuses unless -auto-approve, without reading stdin, and changes
// nothing.
func TestApplyConfirmPrompt(t *testing.T) {
	for _, answer := range []string{"no\n", "y\n", "YES\n", "yes please\n", "\n", ""} {
		t.Run("answer "+strings.TrimSpace(answer), func(t *testing.T) {
			tc := newCLICluster(t, cliWeb("echo:v1"))
			for _, cmd := range []string{"apply", "destroy"} {
				tc.resetCalls()
				r := tc.run(Streams{In: strings.NewReader(answer), InTerminal: true, OutTerminal: true}, cmd, tc.dir)
				if r.code != 1 || !strings.Contains(r.err, "Error: "+cmd+" cancelled: nothing was changed") {
					t.Fatalf("%s, answer %q:\n%s", cmd, answer, r)
				}
				if !strings.Contains(r.out, "Only 'yes' will be accepted to approve.") || !strings.Contains(r.out, "Enter a value:") {
					t.Fatalf("%s: no prompt:\n%s", cmd, r)
				}
				if m := tc.mutations(); len(m) != 0 {
					t.Fatalf("%s cancelled, yet: %v", cmd, m)
				}
				audit := 0
				if cmd == "destroy" {
					audit = 1 // the apply below
				}
				tc.assertNothingLeft(cmd, audit)
				if cmd == "apply" {
					// The first run creates, so destroy has something to ask about.
					if r := tc.run(Streams{In: strings.NewReader("yes\n"), InTerminal: true}, "apply", tc.dir); r.code != 0 {
						t.Fatalf("apply, answer yes:\n%s", r)
					}
				}
			}
			if got := len(tc.containers()); got != 3 {
				t.Fatalf("destroy cancelled, yet %d containers are left", got)
			}
		})
	}
	t.Run("no terminal", func(t *testing.T) {
		tc := newCLICluster(t, cliWeb("echo:v1"))
		if r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
			t.Fatal(r)
		}
		// Something for both to do: apply an update, destroy everything.
		tc.write(cliWeb("echo:v2"))
		for _, cmd := range []string{"apply", "destroy"} {
			tc.resetCalls()
			in := &promptReader{answer: "yes\n", at: func() { t.Errorf("%s read stdin without a terminal", cmd) }}
			r := tc.run(Streams{In: in, OutTerminal: true}, cmd, tc.dir)
			if r.code != 1 || !strings.Contains(r.err, "Error: no terminal to confirm on: review the plan and run again with -auto-approve") ||
				strings.Contains(r.out, "Enter a value") {
				t.Fatalf("%s without a terminal:\n%s", cmd, r)
			}
			if m := tc.mutations(); len(m) != 0 {
				t.Fatalf("%s refused, yet: %v", cmd, m)
			}
			tc.assertNothingLeft(cmd, 1)
		}
	})
}

// assertNothingLeft checks that a run that applied nothing left no lock and
// no audit record (audit: how many each node held before it).
func (tc *cliCluster) assertNothingLeft(cmd string, audit int) {
	tc.t.Helper()
	for _, n := range []string{"node1", "node2", "node3"} {
		if vs := tc.volumes(n, planner.KindLock); len(vs) != 0 {
			tc.t.Fatalf("%s: %s left its lock: %v", n, cmd, vs)
		}
		if a := tc.audit(n); len(a) != audit {
			tc.t.Fatalf("%s: %s left an audit record: %+v", n, cmd, a)
		}
	}
}

// berth force-unlock LOCK_ID removes a lock left by a run that is gone
// (here: of another machine, so apply cannot take it over); a wrong ID is
// refused and removes nothing.
func TestForceUnlockCommand(t *testing.T) {
	tc := newCLICluster(t, cliWeb("echo:v1"))
	ctx := context.Background()
	stale := map[string]string{
		planner.LabelKind: planner.KindLock, planner.LabelProject: "demo", planner.LabelApply: "dead1234",
		planner.LabelPlan: "", planner.LabelHolder: "carol@other-laptop", executor.LabelHost: "other-laptop",
		planner.LabelPID: "4321", planner.LabelSince: "2025-03-01T12:00:00Z",
	}
	for _, f := range tc.nodes {
		if _, err := f.CreateVolume(ctx, executor.LockVolumeName("demo"), stale); err != nil {
			t.Fatal(err)
		}
	}
	r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir)
	if r.code != 1 || !strings.Contains(r.err, "locked on node node1 by carol@other-laptop (pid 4321, since 2025-03-01T12:00:00Z, lock ID dead1234)") ||
		!strings.Contains(r.err, "berth force-unlock dead1234") {
		t.Fatalf("apply with the lock held:\n%s", r)
	}
	// A wrong ID is refused; the lock stays on every node.
	r = tc.run(Streams{}, "force-unlock", "beef0000", tc.dir)
	if r.code != 1 || !strings.Contains(r.err, "Error: no lock with ID beef0000 found on any reachable node") || r.out != "" {
		t.Fatalf("force-unlock with a wrong ID:\n%s", r)
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		if vs := tc.volumes(n, planner.KindLock); len(vs) != 1 || vs[0].Labels[planner.LabelApply] != "dead1234" {
			t.Fatalf("%s: lock after a refused force-unlock: %v", n, vs)
		}
	}
	if r := tc.run(Streams{}, "force-unlock"); r.code != 1 || !strings.Contains(r.err, "force-unlock needs LOCK_ID") {
		t.Fatalf("force-unlock without an ID:\n%s", r)
	}
	r = tc.run(Streams{}, "force-unlock", "dead1234", tc.dir)
	if r.code != 0 || r.out != "Lock dead1234 removed from node1, node2, node3.\n" {
		t.Fatalf("force-unlock:\n%s", r)
	}
	tc.assertNothingLeft("force-unlock", 0)
	if r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
		t.Fatalf("apply after force-unlock:\n%s", r)
	}
}

// Each output stream is drawn for what it is: the image transfer progress
// (stderr) is redrawn in place only when stderr is a terminal, whatever
// stdout is; so are the colours of the diagnostics (stderr). A log file
// that stderr is redirected to gets plain lines, no escape codes.
func TestProgressAndDiagnosticsPerStream(t *testing.T) {
	for _, tt := range []struct{ out, err bool }{{true, false}, {false, true}, {false, false}, {true, true}} {
		t.Run(fmt.Sprintf("stdout terminal %v, stderr terminal %v", tt.out, tt.err), func(t *testing.T) {
			tc := newCLICluster(t, cliWeb("app:1"))
			eng := fake.NewLocalEngine()
			eng.AddImage("app:1")
			prevFacts, prevStep := localImageFacts, newImageStep
			t.Cleanup(func() { localImageFacts, newImageStep = prevFacts, prevStep })
			localImageFacts = func(ctx context.Context, cfg *config.Config, withLocal bool) (images.Facts, error) {
				imgs, err := eng.Images(ctx)
				info, _ := eng.Info(ctx)
				return images.Facts{BuildImages: map[string]string{}, LocalImages: imgs, LocalEngineID: info.ID}, err
			}
			newImageStep = func(cfg *config.Config, s *executor.Session, opts images.Options) *images.Step {
				opts.Local = func(context.Context) (images.LocalEngine, error) { return eng, nil }
				return executor.NewImageStep(cfg, s, opts)
			}
			streams := func() Streams {
				return Streams{OutTerminal: tt.out, ErrTerminal: tt.err, Environ: []string{"USER=tester"}}
			}
			r := tc.run(streams(), "apply", "-auto-approve", tc.dir)
			if r.code != 0 {
				t.Fatal(r)
			}
			// The image went to every node, with its progress on stderr.
			for _, n := range []string{"node1", "node2", "node3"} {
				if !strings.Contains(r.err, "Sending app:1") || !regexp.MustCompile(`(?m)^\s+`+n+`\s+done: `).MatchString(stripANSI(r.err)) {
					t.Fatalf("no transfer progress for %s on stderr:\n%s", n, r)
				}
			}
			if got := strings.Contains(r.err, "\x1b"); got != tt.err {
				t.Fatalf("escape codes on stderr: %v, want %v (stderr a terminal: %v):\n%q", got, tt.err, tt.err, r.err)
			}
			if got := strings.Contains(r.out, "\x1b"); got != tt.out {
				t.Fatalf("escape codes on stdout: %v, want %v (stdout a terminal: %v):\n%q", got, tt.out, tt.out, r.out)
			}
			// Diagnostics go to stderr, coloured by stderr's terminal.
			tc.write(cliWeb("app:1") + "\nservice \"web\" {\n")
			r = tc.run(streams(), "apply", "-auto-approve", tc.dir)
			if r.code != 1 || !strings.Contains(stripANSI(r.err), "main.hcl:") {
				t.Fatalf("invalid configuration:\n%s", r)
			}
			if got := strings.Contains(r.err, "\x1b"); got != tt.err {
				t.Fatalf("diagnostics: escape codes on stderr: %v, want %v:\n%q", got, tt.err, r.err)
			}
		})
	}
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

func stripANSI(s string) string { return ansiRE.ReplaceAllString(s, "") }
