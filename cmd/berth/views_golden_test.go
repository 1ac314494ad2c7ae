package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/internal/errtext"
	"github.com/berth-dev/berth/planner"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/views/")

// golden compares got with the file testdata/views/name, or rewrites it
// under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "views", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// viewStreams are streams into buffers; terminal sets every terminal flag.
func viewStreams(terminal bool) (Streams, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return Streams{In: strings.NewReader(""), Out: &out, Err: &errb, InTerminal: terminal, OutTerminal: terminal,
		ErrTerminal: terminal, Environ: []string{"USER=tester"}}, &out, &errb
}

// outputs is a run's output as a golden file holds it.
func outputs(code int, out, errb string) string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, out, errb)
}

// goldenPlan reads the plan of a planner golden case.
func goldenPlan(t *testing.T, name string) *planner.Plan {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "planner", "testdata", name, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p planner.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// The plan views of plan, show and apply: text (plain and coloured), the
// JSON document of plan -json and the first line of apply -json.
func TestPlanViewsGolden(t *testing.T) {
	for _, name := range []string{"image-change-start-first", "resources-only-update-in-place", "interrupted-apply-rollback", "image-build-send-tag", "node-unreachable", "destroy", "no-op"} {
		t.Run(name, func(t *testing.T) {
			p := goldenPlan(t, name)
			for _, tt := range []struct {
				file     string
				json     bool
				terminal bool
			}{{"txt", false, false}, {"color.txt", false, true}, {"json", true, false}} {
				s, out, _ := viewStreams(tt.terminal)
				if err := newPlanView(s, tt.json, false).Planned(p); err != nil {
					t.Fatal(err)
				}
				golden(t, "plan/"+name+"."+tt.file, out.String())
			}
			s, out, _ := viewStreams(false)
			v := newApplyView(s, true, false, applyContext{cfg: &config.Config{Dir: "."}})
			if err := v.Planned(p); err != nil {
				t.Fatal(err)
			}
			golden(t, "plan/"+name+".apply.jsonl", out.String())
		})
	}
}

// colorPlanByText is how the plan was once coloured: by parsing the text
// renderer's line prefixes. The coloured view must still give exactly that.
func colorPlanByText(text string) string {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		t := strings.TrimLeft(l, " ")
		ind := l[:len(l)-len(t)]
		var style, sym string
		switch {
		case strings.HasPrefix(t, "-/+ "), strings.HasPrefix(t, "+/- "):
			style, sym = ansiMagenta, t[:3]
		case strings.HasPrefix(t, "+ "):
			style, sym = ansiGreen, "+"
		case strings.HasPrefix(t, "~ ") && len(ind) == 2:
			style, sym = ansiYellow, "~"
		case strings.HasPrefix(t, "- "):
			style, sym = ansiRed, "-"
		case strings.HasPrefix(t, "Plan:"), strings.HasPrefix(t, "No changes."):
			lines[i] = ansiBold + strings.TrimRight(l, "\n") + ansiReset + "\n"
			continue
		case strings.HasPrefix(t, "# service"):
			lines[i] = ind + ansiBold + strings.TrimRight(t, "\n") + ansiReset + "\n"
			continue
		default:
			continue
		}
		lines[i] = ind + style + sym + ansiReset + t[len(sym):]
	}
	return strings.Join(lines, "")
}

// Colour comes from the action kinds now, and gives the same bytes as the
// old colouring by text on every planner golden case.
func TestPlanColourFromDataMatchesText(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("..", "..", "planner", "testdata", "*", "plan.json"))
	if len(dirs) < 30 {
		t.Fatalf("only %d planner golden plans", len(dirs))
	}
	for _, path := range dirs {
		name := filepath.Base(filepath.Dir(path))
		p := goldenPlan(t, name)
		var plain, styled bytes.Buffer
		p.WriteText(&plain)
		if err := writePlanText(&styled, p, true); err != nil {
			t.Fatal(err)
		}
		if want := colorPlanByText(plain.String()); styled.String() != want {
			t.Errorf("%s:\ngot  %q\nwant %q", name, styled.String(), want)
		}
		if stripANSI(styled.String()) != plain.String() {
			t.Errorf("%s: colour changed the text", name)
		}
	}
}

// applyEvents is an apply of two replicas as the executor reports it: an
// image sent, replica 1 replaced, then replica 2 replaced (result
// "applied") or failing, and the rollback or the pause.
func applyEvents(t0 time.Time, result string) []executor.Event {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(ms int, typ, kind string, replica int, node, msg string) executor.Event {
		e := executor.Event{Time: at(ms), Type: typ, ApplyID: "ab12cd34", Kind: kind, Message: msg}
		if replica > 0 {
			e.Service, e.Replica, e.Node, e.Container = "web", replica, node, fmt.Sprintf("demo-web-%d", replica)
		}
		return e
	}
	evs := []executor.Event{
		ev(0, executor.EvPhase, "", 0, "", "preflight"),
		ev(10, executor.EvPhase, "", 0, "", "images"),
		{Time: at(900), Type: executor.EvImage, ApplyID: "ab12cd34", Kind: "send", Node: "node2", Message: "echo:v2 sent to node2 (41 MB in 0.9s)"},
		ev(910, executor.EvPhase, "", 0, "", "batch 1 of 2"),
		ev(920, executor.EvStep, "replace", 1, "node1", "stop demo-web-1"),
		ev(1200, executor.EvStep, "replace", 1, "node1", "start"),
		ev(1450, executor.EvActionDone, "replace", 1, "node1", "healthy"),
		ev(1460, executor.EvPhase, "", 0, "", "batch 2 of 2"),
		ev(1470, executor.EvStep, "replace", 2, "node2", "stop demo-web-2"),
		ev(1700, executor.EvStep, "replace", 2, "node2", "start"),
	}
	switch result {
	case executor.ResultApplied:
		return append(evs, ev(2100, executor.EvActionDone, "replace", 2, "node2", "healthy"),
			ev(2110, executor.EvPhase, "", 0, "", "commit"))
	case executor.ResultPaused:
		return append(evs, ev(2930, executor.EvActionFailed, "replace", 2, "node2", "health: not healthy"),
			ev(2940, executor.EvPhase, "", 0, "", "paused"))
	}
	return append(evs, ev(2930, executor.EvActionFailed, "replace", 2, "node2", "health: not healthy"),
		ev(2940, executor.EvPhase, "", 0, "", "rollback"),
		ev(3100, executor.EvUndo, "replace", 2, "node2", "restored demo-web-2"),
		ev(3300, executor.EvUndo, "replace", 1, "node1", "restored demo-web-1"))
}

// The apply views: progress (plain lines, redrawn in place on a coloured
// terminal, JSON lines), then the result of a success, a rollback and a
// pause.
func TestApplyViewsGolden(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := goldenPlan(t, "port-change")
	cfg := &config.Config{Dir: "./my app", Nodes: []*config.Node{{Name: "node1", Address: "10.0.0.11"}, {Name: "node2", Address: "10.0.0.12"}, {Name: "node3", Address: "10.0.0.13"}}}
	cause := errors.New(`service "web" replica 2 on node node2 (container demo-web-2): replace: health: not healthy`)
	results := map[string]func(o *executor.Outcome) error{
		"applied": func(o *executor.Outcome) error { o.Result = executor.ResultApplied; return nil },
		"rolled-back": func(o *executor.Outcome) error {
			o.Result = executor.ResultRolledBack
			return &executor.RollbackError{Cause: cause, Undone: 1}
		},
		"paused": func(o *executor.Outcome) error {
			o.Result = executor.ResultPaused
			return &executor.PausedError{Cause: cause, ApplyID: "ab12cd34", Service: "web", Replica: 2, Node: "node2", Container: "demo-web-2"}
		},
	}
	for _, view := range []struct {
		name           string
		json, terminal bool
	}{{"human", false, false}, {"terminal", false, true}, {"json", true, false}} {
		for result, set := range results {
			t.Run(view.name+"/"+result, func(t *testing.T) {
				s, out, errb := viewStreams(view.terminal)
				v := newApplyView(s, view.json, false, applyContext{cfg: cfg, vars: true})
				if h, ok := v.(*applyHuman); ok {
					h.now = func() time.Time { return t0.Add(3456 * time.Millisecond) }
				}
				v.Applying(p, t0)
				o := &executor.Outcome{Op: executor.OpApply, Plan: p, ApplyID: "ab12cd34", Started: t0,
					Finished: t0.Add(3400 * time.Millisecond), BytesSent: map[string]int64{"node2": 41_000_000}, Done: p.Actions[:1]}
				err := set(o)
				o.Err = err
				for _, e := range applyEvents(t0, o.Result) {
					if e.Type == executor.EvImage {
						if ev := v.ImageOutput().Event; ev != nil {
							ev(e)
						}
						continue
					}
					v.Event(e)
				}
				v.Result(o, err)
				code := report(errb, opError(o, err, v.ErrorText))
				golden(t, "apply/"+view.name+"-"+result+".txt", outputs(code, out.String(), errb.String()))
			})
		}
	}
}

// The status views: tables (plain and coloured) and the JSON document.
func TestStatusViewsGolden(t *testing.T) {
	cfg, live := statusFixture()
	st := buildStatus(cfg, live)
	st.Locks = map[string]executor.LockInfo{"node1": {ApplyID: "dead1234", Holder: "carol@other-laptop", Host: "other-laptop", PID: 4321,
		Since: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}
	st.Applies = []executor.AuditRecord{{ApplyID: "ab12cd34", PlanID: "0123456789abcdef", Holder: "tester@laptop",
		Started: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Ended: time.Date(2026, 12, 1, 10, 0, 4, 0, time.UTC), Result: "rolled back", Actions: 3}}
	for _, tt := range []struct {
		file     string
		json     bool
		terminal bool
	}{{"status.txt", false, false}, {"status.color.txt", false, true}, {"status.json", true, false}} {
		s, out, _ := viewStreams(tt.terminal)
		if err := newStatusView(s, tt.json, false).Status(st); err != nil {
			t.Fatal(err)
		}
		golden(t, "status/"+tt.file, out.String())
	}
}

// hostKeyError is what a session reports for a node whose host key
// changed, with fixed keys.
func hostKeyError(t *testing.T) error {
	key := func(seed byte) ssh.PublicKey {
		pk, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)).Public())
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}
	return &executor.NodeError{Node: "node2", Err: &transport.HostKeyError{Host: "10.0.0.12", Offered: key(1),
		KnownFile: "/home/tester/.ssh/known_hosts", KnownLine: 7, KnownKey: key(2)}}
}

var containerID = regexp.MustCompile(`\b[0-9a-f]{12}\b`)

// elapsed is the time a progress line or a finished action shows.
var elapsed = regexp.MustCompile(`\[ *[0-9.]+s\]|\([0-9.]+m?s\)`)

// losingNode is a node whose connection is lost as a container starts.
type losingNode struct {
	executor.Node
	f *fake.Node
}

func (n losingNode) StartContainer(ctx context.Context, id string) error {
	n.f.Close()
	return n.Node.StartContainer(ctx, id)
}

// jsonFailure is what apply -json says of a failure: the action_failed
// events' messages and the result line's result and error.
func jsonFailure(t *testing.T, out string) string {
	t.Helper()
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var doc map[string]any
		if err := json.Unmarshal([]byte(l), &doc); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		switch doc["type"] {
		case "action_failed":
			fmt.Fprintf(&b, "action_failed %v: %v\n", doc["node"], doc["message"])
		case "result":
			fmt.Fprintf(&b, "result %v\nerror %v\n", doc["result"], doc["error"])
		}
	}
	return b.String()
}

// The errors users see most, as apply, plan and their -json views show
// them (run over fake nodes, except the host key, which the fake cannot
// change).
func TestErrorViewsGolden(t *testing.T) {
	// The directory and the fake's container IDs vary.
	clean := func(tc *cliCluster, s string) string {
		return containerID.ReplaceAllString(strings.ReplaceAll(s, tc.dir, "DIR"), "CONTAINERID")
	}
	for _, jsonOut := range []bool{false, true} {
		suffix := ".txt"
		var jsonArgs []string
		if jsonOut {
			suffix, jsonArgs = ".json.txt", []string{"-json"}
		}
		t.Run("lock held"+suffix, func(t *testing.T) {
			tc := newCLICluster(t, cliWeb("echo:v1"))
			stale := map[string]string{
				planner.LabelKind: planner.KindLock, planner.LabelProject: "demo", planner.LabelApply: "dead1234",
				planner.LabelPlan: "", planner.LabelHolder: "carol@other-laptop", executor.LabelHost: "other-laptop",
				planner.LabelPID: "4321", planner.LabelSince: "2025-03-01T12:00:00Z",
			}
			if _, err := tc.nodes["node1"].CreateVolume(t.Context(), executor.LockVolumeName("demo"), stale); err != nil {
				t.Fatal(err)
			}
			r := tc.run(Streams{}, append(append([]string{"apply", "-auto-approve"}, jsonArgs...), tc.dir)...)
			golden(t, "errors/lock-held"+suffix, clean(tc, outputs(r.code, r.out, r.err)))
		})
		t.Run("stale plan"+suffix, func(t *testing.T) {
			tc := newCLICluster(t, cliWeb("echo:v1"))
			planFile := filepath.Join(t.TempDir(), "web.plan")
			if r := tc.run(Streams{}, "plan", "-out", planFile, tc.dir); r.code != 0 {
				t.Fatal(r)
			}
			// Another apply changes the nodes since.
			if r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
				t.Fatal(r)
			}
			r := tc.run(Streams{}, append(append([]string{"apply", "-auto-approve"}, jsonArgs...), planFile)...)
			golden(t, "errors/stale-plan"+suffix, clean(tc, outputs(r.code, r.out, r.err)))
		})
		t.Run("impossible placement"+suffix, func(t *testing.T) {
			tc := newCLICluster(t, `
service "cache" {
  image    = "echo:v1"
  replicas = 2

  placement {
    constraint = node.cpus >= 512
  }
}
`)
			r := tc.run(Streams{}, append(append([]string{"plan"}, jsonArgs...), tc.dir)...)
			golden(t, "errors/impossible-placement"+suffix, clean(tc, outputs(r.code, r.out, r.err)))
		})
	}
	// Apply failures: Docker refusing a create, a name another container
	// holds (as Docker words it), the node lost mid-apply; and force-unlock
	// with a wrong ID.
	applyFailures := []struct {
		name  string
		setup func(tc *cliCluster)
	}{
		{"create fails", func(tc *cliCluster) {
			tc.nodes["node1"].FailNext("CreateContainer", errors.New(`create container demo-web-1: Error response from daemon: `+
				`mkdir /var/lib/docker/overlay2/0f3c: no space left on device`))
		}},
		{"name conflict", func(tc *cliCluster) {
			tc.nodes["node1"].FailNext("CreateContainer", errors.New(`create container demo-web-1: Error response from daemon: Conflict. `+
				`The container name "/demo-web-1" is already in use by container "3f2a9c0d1e2b". You have to remove (or rename) that container to be able to reuse that name.`))
		}},
		{"node lost", func(tc *cliCluster) {
			tc.wrap = func(name string, n executor.Node) executor.Node {
				if name != "node1" {
					return n
				}
				return losingNode{n, tc.nodes[name]}
			}
		}},
	}
	for _, af := range applyFailures {
		for _, jsonOut := range []bool{false, true} {
			suffix, args := ".txt", []string{"apply", "-auto-approve", "-parallelism", "1"}
			if jsonOut {
				suffix, args = ".json.txt", append(args, "-json")
			}
			t.Run(af.name+suffix, func(t *testing.T) {
				tc := newCLICluster(t, cliWeb("echo:v1"))
				af.setup(tc)
				r := tc.run(Streams{}, append(args, tc.dir)...)
				if r.code != 1 {
					t.Fatalf("apply did not fail:\n%s", r)
				}
				if errtext.RepeatedAtJoin(r.err) != "" {
					t.Errorf("repeated context at %q", errtext.RepeatedAtJoin(r.err))
				}
				out := r.out
				if jsonOut {
					out = jsonFailure(t, r.out)
				}
				out = elapsed.ReplaceAllString(out, "[ T ]")
				golden(t, "errors/"+strings.ReplaceAll(af.name, " ", "-")+suffix, clean(tc, outputs(r.code, out, r.err)))
			})
		}
	}
	t.Run("force-unlock wrong ID", func(t *testing.T) {
		tc := newCLICluster(t, cliWeb("echo:v1"))
		held := map[string]string{
			planner.LabelKind: planner.KindLock, planner.LabelProject: "demo", planner.LabelApply: "dead1234",
			planner.LabelPlan: "", planner.LabelHolder: "carol@other-laptop", executor.LabelHost: "other-laptop",
			planner.LabelPID: "4321", planner.LabelSince: "2025-03-01T12:00:00Z",
		}
		for _, n := range []string{"node1", "node3"} {
			if _, err := tc.nodes[n].CreateVolume(t.Context(), executor.LockVolumeName("demo"), held); err != nil {
				t.Fatal(err)
			}
		}
		r := tc.run(Streams{}, "force-unlock", "beef0000", tc.dir)
		golden(t, "errors/force-unlock-wrong-id.txt", clean(tc, outputs(r.code, r.out, r.err)))
	})
	var errb bytes.Buffer
	code := report(&errb, opError(nil, &executor.HostKeyMismatchError{Errs: []error{hostKeyError(t)}}, (error).Error))
	golden(t, "errors/host-key-changed.txt", outputs(code, "", errb.String()))
}

// apply -json's plan and result lines are typed now; they are byte for byte
// the lines once built from maps (encoding/json sorts a map's keys).
func TestApplyJSONLinesAsMaps(t *testing.T) {
	p := goldenPlan(t, "port-change")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 123, time.UTC)
	for _, tt := range []struct {
		done []planner.Action
		sent map[string]int64
		err  error
	}{
		{nil, map[string]int64{}, errors.New("image transfer failed before any container changed: <no engine> & more")},
		{p.Actions, map[string]int64{"node1": 5, "node2": 7}, nil},
	} {
		s, out, _ := viewStreams(false)
		v := newApplyView(s, true, false, applyContext{cfg: &config.Config{Dir: "."}})
		v.Planned(p)
		o := &executor.Outcome{Plan: p, ApplyID: "ab12cd34", Result: "failed", Done: tt.done, BytesSent: tt.sent, Finished: t0, Err: tt.err}
		v.Result(o, tt.err)
		doc := map[string]any{"type": "result", "time": t0, "result": "failed", "apply_id": "ab12cd34", "plan_id": p.ID}
		doc["done"] = tt.done
		doc["bytes_sent"] = tt.sent
		if tt.err != nil {
			doc["error"] = tt.err.Error()
		}
		planLine, _ := json.Marshal(map[string]any{"type": "plan", "plan": p})
		resultLine, _ := json.Marshal(doc)
		if want := string(planLine) + "\n" + string(resultLine) + "\n"; out.String() != want {
			t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
		}
	}
}
