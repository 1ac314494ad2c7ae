package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testcluster"
)

// dayTwoHCL is service "web": three replicas, one per node, with a
// reservation and a sensitive variable in its environment.
func dayTwoHCL(image string) string {
	return fmt.Sprintf(`
variable "token" {
  type      = string
  sensitive = true
  default   = "dayTwoSecret-4f1c"
}

service "web" {
  image             = %q
  replicas          = 3
  stop_grace_period = "1s"

  resources {
    cpus   = 0.25
    memory = "64MiB"
  }

  env = {
    TOKEN = var.token
  }

  placement {
    max_per_node = 1
  }

  health {
    tcp      = true
    port     = 8080
    interval     = "200ms"
    start_period = "10s"
  }

  update {
    parallelism = 1
    monitor     = "1s"
  }
}
`, image)
}

// logLine is one line of berth logs -timestamps.
type logLine struct {
	prefix string
	time   time.Time
	text   string
}

func parseLogLines(t *testing.T, out string) []logLine {
	t.Helper()
	var ls []logLine
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		prefix, rest, ok := strings.Cut(l, " | ")
		if !ok {
			t.Fatalf("line without a prefix: %q", l)
		}
		ts, text, _ := strings.Cut(rest, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("line without a timestamp: %q", l)
		}
		ls = append(ls, logLine{strings.TrimSpace(prefix), tm, text})
	}
	return ls
}

// logs, exec and nodes against the three test nodes, after one apply.
func TestDayTwoLogsExecNodes(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": dayTwoHCL(testcluster.ImageV1)})
	project := filepath.Base(dir)
	mustBerth(t, nil, "apply", "-auto-approve", dir)

	// logs: every replica's start line, each once, prefixed, in time order.
	r := mustBerth(t, nil, "logs", "-dir", dir, "-timestamps", "web")
	ls := parseLogLines(t, r.out)
	byPrefix := map[string]int{}
	for i, l := range ls {
		if !strings.Contains(l.text, "listening on :8080") {
			t.Errorf("unexpected line %q", l.text)
		}
		byPrefix[l.prefix]++
		if i > 0 && l.time.Before(ls[i-1].time) {
			t.Errorf("line %d is older than the one before:\n%s", i, r.out)
		}
	}
	nodeOf := map[int]string{}
	for p, n := range byPrefix {
		var idx int
		var node string
		if _, err := fmt.Sscanf(strings.Replace(p, "@", " ", 1), "web.%d %s", &idx, &node); err != nil || n != 1 {
			t.Errorf("prefix %q (%d lines)", p, n)
		}
		nodeOf[idx] = node
	}
	if len(byPrefix) != 3 || len(nodeOf) != 3 {
		t.Fatalf("want one line from each of 3 replicas:\n%s", r)
	}
	// One replica, the last line only.
	r = mustBerth(t, nil, "logs", "-dir", dir, "-tail", "1", "web.2")
	if want := "web.2@" + nodeOf[2] + " | "; !strings.HasPrefix(r.out, want) || strings.Count(r.out, "\n") != 1 {
		t.Errorf("logs -tail 1 web.2: want one line starting %q:\n%s", want, r)
	}
	if r := berth(t, nil, "logs", "-dir", dir, "web.9"); r.code != 1 || !strings.Contains(r.err, "web.9: no such replica") {
		t.Errorf("logs web.9:\n%s", r)
	}

	// exec: the command's exit status is berth's.
	if r := berth(t, nil, "exec", "-dir", dir, "web", "--", "/echo", "check"); r.code != 0 {
		t.Errorf("exec /echo check:\n%s", r)
	}
	r = berth(t, nil, "exec", "-dir", dir, "web.3", "--", "/echo", "check", "http://127.0.0.1:1/")
	if r.code != 1 || !strings.Contains(r.err, "check:") {
		t.Errorf("exec of a failing check: want exit 1 and its message:\n%s", r)
	}
	r = berth(t, nil, "exec", "-dir", dir, "web.1", "--", "/no-such-binary")
	if r.code != 126 && r.code != 127 {
		t.Errorf("exec of a missing binary: want exit 126 or 127:\n%s", r)
	}

	// nodes: the engines' facts, this project's containers and what they
	// reserve.
	r = mustBerth(t, nil, "nodes", "-json", dir)
	var nr struct {
		Nodes []struct {
			Name             string            `json:"name"`
			Reachable        bool              `json:"reachable"`
			Labels           map[string]string `json:"labels"`
			Engine           string            `json:"engine_version"`
			OS               string            `json:"os"`
			Arch             string            `json:"arch"`
			CPUs             int               `json:"cpus"`
			Memory           int64             `json:"memory_bytes"`
			ReservedNanoCPUs int64             `json:"reserved_nano_cpus"`
			ReservedMemory   int64             `json:"reserved_memory_bytes"`
			Project          int               `json:"project_containers"`
			Other            int               `json:"other_containers"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.out), &nr); err != nil {
		t.Fatalf("%v:\n%s", err, r.out)
	}
	if len(nr.Nodes) != 3 {
		t.Fatalf("want 3 nodes:\n%s", r.out)
	}
	ctx := context.Background()
	for i, n := range nr.Nodes {
		info, err := c.Docker(t, n.Name).Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ver, err := c.Docker(t, n.Name).ServerVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		own := projectContainersByID(t, c, n.Name, project)
		if n.Name != fmt.Sprintf("node%d", i+1) || !n.Reachable || n.Engine != ver.Version || n.OS != ver.Os || n.Arch != ver.Arch ||
			n.CPUs != info.NCPU || n.Memory != info.MemTotal || n.Project != len(own) || n.Project < 1 ||
			n.ReservedNanoCPUs != int64(n.Project)*25e7 || n.ReservedMemory != int64(n.Project)*64<<20 ||
			n.Labels["zone"] != string(rune('a'+i)) {
			t.Errorf("node %+v; docker: version %s %s/%s, %d CPUs, %d bytes, project containers %d", n, ver.Version, ver.Os, ver.Arch, info.NCPU, info.MemTotal, len(own))
		}
		// Other tests' containers come and go: only a bound holds.
		if n.Other < 0 || n.Other > info.Containers {
			t.Errorf("%s: other containers %d, engine total %d", n.Name, n.Other, info.Containers)
		}
	}
	r = mustBerth(t, nil, "nodes", dir)
	if !strings.Contains(r.out, "NODE ") || !strings.Contains(r.out, "Project "+project+": 3 of 3 nodes reachable") {
		t.Errorf("nodes:\n%s", r)
	}
}

// logs -f goes on across an apply that replaces every replica: it shows
// the new containers' lines and says it follows them; Ctrl-C ends it with
// status 0.
func TestDayTwoLogsFollowAcrossApply(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": dayTwoHCL(testcluster.ImageV1)})
	mustBerth(t, nil, "apply", "-auto-approve", dir)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := execCommand(ctx, testcluster.BuildBerth(t), "logs", "-f", "-dir", dir, "web")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := newScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	// waitFor reads lines until n of them contain text.
	waitFor := func(text string, n int) {
		t.Helper()
		got := 0
		for _, l := range seen {
			if strings.Contains(l, text) {
				got++
			}
		}
		for got < n {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("logs -f ended; %d of %d lines with %q:\n%s\n--- stderr\n%s", got, n, text, strings.Join(seen, "\n"), stderr.String())
				}
				seen = append(seen, l)
				if strings.Contains(l, text) {
					got++
				}
			case <-ctx.Done():
				t.Fatalf("%d of %d lines with %q:\n%s\n--- stderr\n%s", got, n, text, strings.Join(seen, "\n"), stderr.String())
			}
		}
	}
	waitFor("echo v1 (ok) listening", 3)

	writeMain(t, dir, dayTwoHCL(testcluster.ImageV2))
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	waitFor("echo v2 (ok) listening", 3)
	waitFor("signal received, exiting", 3) // the old containers' last lines

	cmd.Process.Signal(syscall.SIGINT)
	for l := range lines {
		seen = append(seen, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f after Ctrl-C: %v\n--- stderr\n%s", err, stderr.String())
	}
	for _, l := range seen {
		if !strings.HasPrefix(l, "web.") || !strings.Contains(l, " | ") {
			t.Errorf("line without its replica: %q", l)
		}
	}
	if n := strings.Count(stderr.String(), "following new container"); n != 3 {
		t.Errorf("want 3 new containers announced, got %d:\n%s", n, stderr.String())
	}
	if strings.Contains(stderr.String(), "dayTwoSecret") || strings.Contains(strings.Join(seen, "\n"), "dayTwoSecret") {
		t.Error("the secret was shown")
	}
}

// drainHCL is service "web": three replicas, at most two per node, rolled
// out one at a time.
const drainHCL = `
service "web" {
  image             = "berth-test/echo:v1"
  replicas          = 3
  stop_grace_period = "1s"

  placement {
    max_per_node = 2
  }

  health {
    tcp          = true
    port         = 8080
    interval     = "200ms"
    start_period = "10s"
  }

  update {
    parallelism = 1
    monitor     = "1s"
  }
}
`

// drain = true on node2 moves its replica to node1 and node3, with never
// fewer than replicas minus parallelism running (read from the engines
// throughout); the next plan changes nothing and node2 stays empty.
func TestDayTwoDrain(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": drainHCL})
	project := filepath.Base(dir)
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	if cs := containersOf(t, c, "node2", project); len(cs) != 1 {
		t.Fatalf("node2 before the drain: %v", cs)
	}

	nodes := c.NodesHCL()
	i := strings.Index(nodes, `node "node2" {`)
	if i < 0 {
		t.Fatalf("no node2 block in nodes.hcl:\n%s", nodes)
	}
	i += len(`node "node2" {`)
	if err := os.WriteFile(filepath.Join(dir, "nodes.hcl"), []byte(nodes[:i]+"\n  drain = true\n"+nodes[i:]), 0o644); err != nil {
		t.Fatal(err)
	}

	r := mustBerth(t, nil, "plan", dir)
	if !strings.Contains(r.out, "moved from node2 to") || !strings.Contains(r.out, "drained (drain = true)") {
		t.Errorf("plan of the drain:\n%s", r.out)
	}
	s := startRunningSampler(t, c, project, "web", 3*time.Minute)
	r = berth(t, nil, "apply", "-auto-approve", dir)
	samples, errs := s.finish()
	if r.code != 0 {
		t.Fatalf("the drain failed:\n%s", r)
	}
	if len(errs) > 0 {
		t.Fatalf("the sampler could not read the engines: %v", errs)
	}
	if least := slices.Min(samples); least < 3-1 {
		t.Errorf("only %d replicas ran at some point of the drain (samples %v)", least, samples)
	}
	if cs := containersOf(t, c, "node2", project); len(cs) != 0 {
		t.Errorf("node2 after the drain: %v", cs)
	}
	running := 0
	for _, n := range []string{"node1", "node3"} {
		for _, ct := range containersOf(t, c, n, project) {
			if ct.State == "running" {
				running++
			}
		}
	}
	if running != 3 {
		t.Errorf("%d replicas running on node1 and node3, want 3", running)
	}
	mustBerth(t, nil, "plan", "-detailed-exitcode", dir) // no changes: nothing goes back to node2
	r = mustBerth(t, nil, "nodes", "-json", dir)
	if !strings.Contains(r.out, `"drained": true`) {
		t.Errorf("nodes does not show node2 drained:\n%s", r.out)
	}
}
