package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

// nodesFixture: node1 with replicas and others' containers, node2
// unreachable, node3 empty.
func nodesFixture() (*config.Config, *planner.Live) {
	cfg, live := statusFixture()
	cfg.Nodes = []*config.Node{
		{Name: "node1", Address: "10.231.0.11", Labels: map[string]string{"zone": "a", "role": "web"}},
		{Name: "node2", Address: "10.231.0.12", Labels: map[string]string{"zone": "b"}},
		{Name: "node3", Address: "10.231.0.13", Drain: true},
	}
	n1 := live.Nodes["node1"]
	n1.Engine = planner.EngineFacts{Version: "28.5.2", OS: "linux", Arch: "amd64", Hostname: "host1", CPUs: 4, MemoryBytes: 8 << 30, Containers: 5}
	n1.Containers[0].NanoCPUs, n1.Containers[0].MemoryBytes = 5e8, 256<<20
	n1.Containers[1].NanoCPUs, n1.Containers[1].MemoryBytes = 5e8, 256<<20 // exited: reserves nothing
	live.Nodes["node3"].Engine = planner.EngineFacts{Version: "27.1.0", OS: "linux", Arch: "arm64", CPUs: 2, MemoryBytes: 1536 << 20, Containers: 2}
	return cfg, live
}

func TestNodesViews(t *testing.T) {
	cfg, live := nodesFixture()
	nr := buildNodes(cfg, live)
	for _, tt := range []struct {
		file  string
		json  bool
		color bool
	}{{"nodes.txt", false, false}, {"nodes.color.txt", false, true}, {"nodes.json", true, false}} {
		s, out, _ := viewStreams(tt.color)
		if tt.json {
			if err := writeJSON(s.Out, nr); err != nil {
				t.Fatal(err)
			}
		} else {
			writeNodesText(s.Out, nr, tt.color)
		}
		golden(t, "nodes/"+tt.file, out.String())
	}
	n1 := nr.Nodes[0]
	if n1.ReservedNanoCPUs != 5e8 || n1.ReservedMemory != 256<<20 || n1.ProjectContainers != 3 || n1.OtherContainers != 2 {
		t.Errorf("node1: %+v", n1)
	}
}

func TestLogsView(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	lines := []executor.ReplicaLine{
		{Service: "web", Replica: 1, Node: "node1", LogLine: executor.LogLine{Time: t0, Text: "echo v1 (ok) listening on :8080 as node1"}},
		{Service: "web", Replica: 12, Node: "node3", LogLine: executor.LogLine{Time: t0.Add(time.Millisecond), Text: "echo v1 (ok) listening on :8080 as node3"}},
		{Service: "web", Replica: 1, Node: "node1", LogLine: executor.LogLine{Time: t0.Add(time.Second), Stderr: true, Text: "echo: signal received, exiting"}},
		{Service: "db", Replica: 1, Node: "node2", LogLine: executor.LogLine{Time: t0.Add(2 * time.Second), Text: ""}},
	}
	for _, tt := range []struct {
		file              string
		color, timestamps bool
	}{{"logs.txt", false, false}, {"logs.color.txt", true, false}, {"logs.timestamps.txt", false, true}} {
		s, out, _ := viewStreams(tt.color)
		v := newLogsView(s.Out, tt.color, tt.timestamps)
		for _, l := range lines {
			v.line(l)
		}
		golden(t, "logs/"+tt.file, out.String())
	}
}

func TestParseTargetsAndSince(t *testing.T) {
	got, err := parseTargets([]string{"web", "web.2", "db-main.10"})
	if err != nil || fmt.Sprint(got) != "[web web.2 db-main.10]" {
		t.Errorf("targets: %v, %v", got, err)
	}
	for _, bad := range []string{"web.x", "web.0", ".2"} {
		if _, err := parseTargets([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	if s, err := parseSince("90m", now); err != nil || !s.Equal(now.Add(-90*time.Minute)) {
		t.Errorf("-since 90m: %v, %v", s, err)
	}
	if s, err := parseSince("2026-12-03T09:00:00Z", now); err != nil || !s.Equal(now.Add(-time.Hour)) {
		t.Errorf("-since RFC 3339: %v, %v", s, err)
	}
	if _, err := parseSince("yesterday", now); err == nil {
		t.Error("-since yesterday: no error")
	}
}

// The commands over fake nodes: logs merged with prefixes, exec's exit
// status passed through, nodes -json; no secret in berth's own messages.
func TestDayTwoCommands(t *testing.T) {
	tc := newCLICluster(t, cliWeb("echo:v1")+`
variable "token" {
  type      = string
  sensitive = true
  default   = "hunter22"
}

service "api" {
  image    = "echo:v1"
  replicas = 1
  env = {
    TOKEN = var.token
  }
}
`)
	if r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
		t.Fatal(r)
	}
	r := tc.run(Streams{}, "logs", "-dir", tc.dir, "web")
	if r.code != 0 {
		t.Fatal(r)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 3 {
		t.Fatalf("logs web:\n%s", r)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		prefix, text, ok := strings.Cut(l, " | ")
		if !ok || !strings.HasPrefix(prefix, "web.") || !strings.Contains(text, "listening on :8080") {
			t.Errorf("line %q", l)
		}
		seen[strings.TrimSpace(prefix)] = true
	}
	if len(seen) != 3 {
		t.Errorf("replicas seen: %v", seen)
	}
	if r := tc.run(Streams{}, "logs", "-dir", tc.dir, "web.7"); r.code != 1 || !strings.Contains(r.err, "web.7: no such replica") {
		t.Errorf("logs web.7:\n%s", r)
	}

	if r := tc.run(Streams{}, "exec", "-dir", tc.dir, "web", "--", "/echo", "check", "http://127.0.0.1:1/"); r.code != 1 || !strings.Contains(r.err, "check:") {
		t.Errorf("exec failing check:\n%s", r)
	}
	for _, f := range tc.nodes {
		f.SetExec(func(c planner.Container, o executor.ExecOptions) int {
			fmt.Fprintf(o.Stdout, "%s %s\n", c.Name, strings.Join(o.Cmd, " "))
			return 42
		})
	}
	if r := tc.run(Streams{}, "exec", "-dir", tc.dir, "api.1", "--", "cat", "-n", "/etc/hostname"); r.code != 42 || r.out != "demo-api-1 cat -n /etc/hostname\n" || r.err != "" {
		t.Errorf("exec api.1:\n%s", r)
	}
	if r := tc.run(Streams{}, "exec", "-dir", tc.dir, "nope", "--", "true"); r.code != 1 || !strings.Contains(r.err, "nope: no such service") {
		t.Errorf("exec nope:\n%s", r)
	}

	r = tc.run(Streams{}, "nodes", "-json", tc.dir)
	if r.code != 0 {
		t.Fatal(r)
	}
	var nr nodesReport
	if err := json.Unmarshal([]byte(r.out), &nr); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range nr.Nodes {
		total += n.ProjectContainers
		if !n.Reachable || n.Engine == "" || n.CPUs == 0 {
			t.Errorf("node %+v", n)
		}
	}
	if len(nr.Nodes) != 3 || total < 4 {
		t.Errorf("nodes: %s", r.out)
	}
	for _, out := range []string{r.out, r.err} {
		if strings.Contains(out, "hunter22") {
			t.Errorf("secret shown:\n%s", out)
		}
	}

	// A node that cannot be read: the other replicas' lines, the node
	// named, exit 1.
	tc.nodes["node3"].SetError("Containers", errors.New("connection lost"))
	r = tc.run(Streams{}, "logs", "-dir", tc.dir, "web")
	if r.code != 1 || strings.Count(r.out, "\n") != 2 || strings.Contains(r.out, "@node3") ||
		!strings.Contains(r.err, "berth: node3: ") || !strings.Contains(r.err, "connection lost (the lines of its replicas are not shown)") {
		t.Errorf("logs with node3 unreadable:\n%s", r)
	}
	if r := tc.run(Streams{}, "nodes", tc.dir); r.code != 1 || !strings.Contains(r.out, "node3: ") {
		t.Errorf("nodes with node3 unreadable:\n%s", r)
	}
}
