package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

const webHCL = `
service "web" {
  image    = "echo:v1"
  replicas = 3
}
`

// replica adds a running container of service's replica on node.
func (fc *fakeCluster) replica(node, service string, index int) planner.Container {
	return fc.nodes[node].AddContainer(planner.Container{
		Name:  planner.ContainerName("demo", service, index),
		Image: "echo:v1",
		Labels: map[string]string{planner.LabelProject: "demo", planner.LabelService: service,
			planner.LabelReplica: fmt.Sprint(index)},
	})
}

// runCtx runs one operation over the cluster's fake nodes with ctx.
func (fc *fakeCluster) runCtx(ctx context.Context, cfg *config.Config, req Request) (*Outcome, error) {
	req.Open = func(context.Context, *config.Config, Options) *Session {
		m := map[string]Node{}
		for name, f := range fc.nodes {
			m[name] = openNode{f}
		}
		return NewSession("demo", m)
	}
	return Run(ctx, cfg, req, nil)
}

// The lines of every replica, merged by time, each with its replica and
// node; -tail per replica; unknown services and replicas named.
func TestLogsMergedInTimeOrder(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webHCL)
	w1, w2, w3 := fc.replica("node1", "web", 1), fc.replica("node2", "web", 2), fc.replica("node3", "web", 3)
	fc.replica("node1", "db", 1)
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	write := func(node string, c planner.Container, sec int, text string) {
		if err := fc.nodes[node].WriteLog(c.ID, t0.Add(time.Duration(sec)*time.Second), sec == 4, text); err != nil {
			t.Fatal(err)
		}
	}
	write("node3", w3, 1, "three a")
	write("node1", w1, 2, "one a")
	write("node2", w2, 3, "two a")
	write("node1", w1, 4, "one b")
	write("node3", w3, 5, "three b")
	write("node2", w2, 5, "two b") // a tie: replica order

	logs := func(req LogsRequest) ([]string, error) {
		var got []string
		req.Line = func(l ReplicaLine) { got = append(got, l.Prefix()+" "+l.Text) }
		_, err := fc.runCtx(context.Background(), cfg, Request{Op: OpLogs, Logs: &req})
		return got, err
	}
	got, err := logs(LogsRequest{Targets: []Target{{Service: "web"}}, LogOptions: LogOptions{Since: t0}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"web.3@node3 three a", "web.1@node1 one a", "web.2@node2 two a", "web.1@node1 one b", "web.2@node2 two b", "web.3@node3 three b"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("merged lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	got, err = logs(LogsRequest{Targets: []Target{{Service: "web", Replica: 2}, {Service: "web", Replica: 3}}, LogOptions: LogOptions{Tail: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "web.2@node2 two b\nweb.3@node3 three b"; strings.Join(got, "\n") != want {
		t.Errorf("tail 1 of web.2 and web.3:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}

	var te *TargetError
	if _, err := logs(LogsRequest{Targets: []Target{{Service: "web", Replica: 9}}}); !errors.As(err, &te) || !strings.Contains(err.Error(), "web.9: no such replica") || !strings.Contains(err.Error(), "web.1@node1") {
		t.Errorf("web.9: %v", err)
	}
	if _, err := logs(LogsRequest{Targets: []Target{{Service: "nope"}}}); !errors.As(err, &te) || !strings.Contains(err.Error(), "nope: no such service") {
		t.Errorf("nope: %v", err)
	}
}

// A follow goes on across a replica's replacement: the old container's
// stream ends, the new container's lines come, and berth says so.
func TestLogsFollowPicksUpNewContainer(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webHCL)
	old := fc.replica("node1", "web", 1)
	fc.nodes[node1].WriteLog(old.ID, time.Time{}, false, "old first")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := make(chan string, 100)
	var mu sync.Mutex
	var notices []string
	req := &LogsRequest{
		Targets: []Target{{Service: "web"}}, LogOptions: LogOptions{Follow: true},
		Poll: 5 * time.Millisecond, Window: time.Millisecond,
		Line: func(l ReplicaLine) { seen <- l.Prefix() + " " + l.Text },
		Notice: func(s string) {
			mu.Lock()
			notices = append(notices, s)
			mu.Unlock()
		},
	}
	done := make(chan error, 1)
	go func() {
		_, err := fc.runCtx(ctx, cfg, Request{Op: OpLogs, Logs: req})
		done <- err
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("line %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no line %q", want)
		}
	}
	expect("web.1@node1 old first")
	fc.nodes[node1].WriteLog(old.ID, time.Time{}, false, "old second")
	expect("web.1@node1 old second")

	// The replacement: the old container stops (its last line) and is
	// removed, a new one starts and writes.
	f := fc.nodes[node1]
	f.StopContainer(ctx, old.ID, time.Second)
	expect("web.1@node1 echo: signal received, exiting")
	f.RemoveContainer(ctx, old.ID)
	repl := fc.replica(node1, "web", 1)
	f.WriteLog(repl.ID, time.Time{}, false, "new first")
	expect("web.1@node1 new first")

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	text := strings.Join(notices, "\n")
	if !strings.Contains(text, "web.1@node1: following new container demo-web-1 ("+planner.ShortID(repl.ID)+")") ||
		!strings.Contains(text, "web.1@node1: container demo-web-1 ("+planner.ShortID(old.ID)+") stopped") {
		t.Errorf("notices:\n%s", text)
	}
}

const node1 = "node1"

// exec runs in the lowest-numbered running replica (or the one named),
// passes the exit code, and names a replica that is not there.
func TestExecInReplica(t *testing.T) {
	fc := newFakeCluster(t)
	cfg := loadHCL(t, webHCL)
	fc.replica("node2", "web", 2)
	fc.replica("node1", "web", 3)
	var ran []string
	for _, f := range fc.nodes {
		f.SetExec(func(c planner.Container, o ExecOptions) int {
			ran = append(ran, c.Name)
			fmt.Fprintln(o.Stdout, strings.Join(o.Cmd, " "))
			return 3
		})
	}
	var out bytes.Buffer
	o, err := fc.runCtx(context.Background(), cfg, Request{Op: OpExec, Exec: &ExecRequest{
		Target: Target{Service: "web"}, ExecOptions: ExecOptions{Cmd: []string{"cat", "/etc/hostname"}, Stdout: &out}}})
	if err != nil || o.ExitCode != 3 || out.String() != "cat /etc/hostname\n" || strings.Join(ran, ",") != "demo-web-2" {
		t.Errorf("exec in web: exit %d, %v, output %q, ran in %v (want 3 in demo-web-2)", o.ExitCode, err, out.String(), ran)
	}
	ran = nil
	if _, err := fc.runCtx(context.Background(), cfg, Request{Op: OpExec, Exec: &ExecRequest{
		Target: Target{Service: "web", Replica: 3}, ExecOptions: ExecOptions{Cmd: []string{"true"}, Stdout: &out}}}); err != nil || strings.Join(ran, ",") != "demo-web-3" {
		t.Errorf("exec in web.3: %v, ran in %v", err, ran)
	}
	_, err = fc.runCtx(context.Background(), cfg, Request{Op: OpExec, Exec: &ExecRequest{
		Target: Target{Service: "web", Replica: 1}, ExecOptions: ExecOptions{Cmd: []string{"true"}}}})
	if err == nil || !strings.Contains(err.Error(), "web.1: no such replica") {
		t.Errorf("exec in web.1: %v", err)
	}
}
