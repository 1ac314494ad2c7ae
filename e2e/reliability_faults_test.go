package e2e

// Scenarios 3, 4 and 6: faults injected with testcluster's helpers (each
// holds the cluster exclusively for the test and is undone at its end).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/berth-dev/berth/internal/testcluster"
)

// Scenario 3: node2 silently blackholed (its packets dropped) while the
// rolling update works on it, right after node1's replica is done. berth
// must notice within its bounded time (keepalive 2 s x 3, request timeout
// 20 s: the suite asserts less than 30 s from the blackhole to berth's
// exit), roll node1 back, and leave node3 untouched. Once node2 is back,
// the next apply recovers what was left there.
func TestReliabilityBlackholedNode(t *testing.T) {
	c := testcluster.Require(t)
	// Exclusive first: Blackhole must not wait for other test processes
	// while the apply runs on, and the scenario's wall time starts after
	// the wait.
	c.Exclusive(t)
	scenarioRun(t, scBlackhole)
	const port = 18910
	project := testcluster.ProjectName(t)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": rWeb(imageOf("v1"), port, "200ms", 1, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	// A 3 s monitor keeps node2's replacement in progress when the
	// blackhole lands.
	writeMain(t, dir, rWeb(imageOf("v2"), port, "3s", 1, ""))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := execCommand(ctx, testcluster.BuildBerth(t), "apply", "-auto-approve", "-json", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var holed time.Time
	var lines []string
	sc := newScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if holed.IsZero() && strings.Contains(line, `"type":"action_done"`) && strings.Contains(line, `"node":"node1"`) {
			c.Blackhole(t, "node2")
			holed = time.Now()
		}
	}
	werr := cmd.Wait()
	took := time.Since(holed)
	out := strings.Join(lines, "\n")
	if holed.IsZero() {
		t.Fatalf("node1's replica never finished:\n%s\n%s", out, stderr.String())
	}
	t.Logf("berth exited %s after node2 was blackholed", took.Round(time.Millisecond))
	scenarioFigure(scBlackhole, "blackhole to exit %.1fs (bound 30s)", took.Seconds())
	if werr == nil {
		t.Fatalf("apply succeeded with node2 blackholed:\n%s", out)
	}
	if took > 30*time.Second {
		t.Fatalf("berth took %s to give up on a blackholed node (bound: 30 s)", took)
	}
	ja := parseJSONApply(t, out)
	errText := fmt.Sprint(ja.Result["error"]) + stderr.String()
	// With rollout overlap, node2's replacement may have begun (its old
	// container set aside) when the blackhole lands: then what is left on
	// node2 cannot be undone until it is back ("rollback incomplete",
	// every item on node2), and the next apply recovers it, below.
	switch ja.Result["result"] {
	case "rolled back":
	case "rollback incomplete":
		for _, l := range strings.Split(errText, "\n") {
			if item, ok := strings.CutPrefix(strings.TrimSpace(l), "- "); ok && !strings.Contains(item, "node2") {
				t.Fatalf("rollback left something undone off node2: %s\n%s", item, errText)
			}
		}
	default:
		t.Fatalf("want a rollback naming node2; result %v:\n%s", ja.Result["result"], errText)
	}
	if !strings.Contains(errText, "node2") {
		t.Fatalf("the error does not name node2:\n%s", errText)
	}
	// node1 rolled back, node3 never touched: both serve v1 with one clean
	// container each.
	for _, n := range []string{"node1", "node3"} {
		cs := containersOf(t, c, n, project)
		if len(cs) != 1 || cs[0].State != "running" || cs[0].Image != imageOf("v1") || strings.Contains(cs[0].Name, "_berth_old_") {
			t.Fatalf("%s after the rollback: %v", n, cs)
		}
		if body := get(c.Node(t, n).Addr, port, "/"); !strings.Contains(body, "echo v1") {
			t.Fatalf("%s answers %q after the rollback", n, body)
		}
	}
	// node2 back: the next apply recovers what was left there, then updates.
	c.Unblackhole(t, "node2")
	r := berthT(t, 2*time.Minute, nil, "apply", "-auto-approve", dir)
	if r.code != 0 {
		t.Fatalf("apply after node2 came back:\n%s", r)
	}
	assertServing(t, c, port, "v2")
	assertClean(t, c, project)
}

// Scenario 4: node2's sshd allows one session per connection and one
// unauthenticated connection at a time. berth needs one connection per node
// and opens channels, not sessions, so plan, status and apply work; with
// the one unauthenticated slot taken by someone else, the connection fails
// with a clear message, and node2's replica is never read as missing: plan
// and apply leave it alone and create no copy elsewhere.
func TestReliabilitySSHDThrottled(t *testing.T) {
	c := testcluster.Require(t)
	c.Exclusive(t) // StartSSHD below: hold the cluster before the first apply
	scenarioRun(t, scThrottle)
	const port = 18911
	project := testcluster.ProjectName(t)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": rWeb(imageOf("v1"), port, "200ms", 3, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	c.StartSSHD(t, "node2", "MaxSessions 1", "MaxStartups 1")

	if r := berthT(t, time.Minute, nil, "plan", "-detailed-exitcode", dir); r.code != 0 || !strings.Contains(r.out, "No changes.") {
		t.Fatalf("plan against the throttled node:\n%s", r)
	}
	r := berthT(t, time.Minute, nil, "status", dir)
	if r.code != 0 || !regexp.MustCompile(`(?m)^\s+2\s+node2\s+\S+-web-2\s+running\s`).MatchString(r.out) {
		t.Fatalf("status against the throttled node does not show web.2 running on node2:\n%s", r)
	}
	writeMain(t, dir, rWeb(imageOf("v2"), port, "200ms", 3, ""))
	if r := berthT(t, 2*time.Minute, nil, "apply", "-auto-approve", dir); r.code != 0 {
		t.Fatalf("apply against the throttled node:\n%s", r)
	}
	assertServing(t, c, port, "v2")
	assertClean(t, c, project)

	// Three plans at once: their handshakes with node2 compete for the one
	// unauthenticated slot (berth retries a connection closed before the
	// key exchange). Each either sees no changes or fails naming node2;
	// none plans a create.
	var wg sync.WaitGroup
	runs := make([]run, 3)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = berthT(t, time.Minute, nil, "plan", "-detailed-exitcode", dir)
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range runs {
		assertNoCreate(t, r)
		switch {
		case r.code == 0 && strings.Contains(r.out, "No changes."):
			ok++
		case strings.Contains(r.out+r.err, "node2"):
			t.Logf("a concurrent plan could not read node2:\n%s", r)
		default:
			t.Fatalf("a plan against the throttled node neither worked nor named node2:\n%s", r)
		}
	}
	scenarioFigure(scThrottle, "%d of 3 concurrent plans read node2", ok)

	// The one unauthenticated slot held by a connection that never
	// authenticates: sshd drops berth's; plan must say so, not plan node2's
	// replica as missing.
	hold, err := net.Dial("tcp", net.JoinHostPort(c.Node(t, "node2").Addr, "22"))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	bufio.NewReader(hold).ReadString('\n') // sshd's greeting: the slot is ours
	r = berthT(t, time.Minute, nil, "plan", dir)
	t.Logf("plan with node2's one unauthenticated slot taken:\n%s", r)
	assertNoCreate(t, r)
	if r.code == 0 && !strings.Contains(r.out, "node2 is unreachable") {
		t.Fatalf("plan with node2's sshd full does not report node2:\n%s", r)
	}
	if !strings.Contains(r.out+r.err, "MaxStartups") {
		t.Fatalf("the message does not say why node2 refused (MaxStartups):\n%s", r)
	}
	if r.code == 0 && !strings.Contains(r.out, `service "web" replica 2 is on no reachable node and may run on node2`) {
		t.Fatalf("plan does not say web.2 is left alone on node2:\n%s", r)
	}
	// apply likewise: nothing created elsewhere, nothing changed.
	before := map[string]string{}
	for _, n := range c.Nodes {
		before[n.Name] = fmt.Sprint(containersOf(t, c, n.Name, project))
	}
	r = berthT(t, time.Minute, nil, "apply", "-auto-approve", dir)
	assertNoCreate(t, r)
	for _, n := range c.Nodes {
		if after := fmt.Sprint(containersOf(t, c, n.Name, project)); after != before[n.Name] {
			t.Fatalf("apply with node2 unreadable changed %s: %s -> %s\n%s", n.Name, before[n.Name], after, r)
		}
	}
	r = berthT(t, time.Minute, nil, "status", dir)
	if r.code != 1 || !strings.Contains(r.out+r.err, "node2") {
		t.Fatalf("status with node2's sshd full: want exit 1 naming node2:\n%s", r)
	}
}

var createLine = regexp.MustCompile(`(?m)^\s*\+\s+\S+ on node`)

// assertNoCreate fails if a plan output proposes to create a replica.
func assertNoCreate(t *testing.T, r run) {
	t.Helper()
	if createLine.MatchString(r.out) || strings.Contains(r.out, `"kind":"create"`) {
		t.Fatalf("the plan creates a replica that exists (a failure read as \"no containers\"):\n%s", r)
	}
}

// Scenario 6: node2 offers another host key. apply must refuse before
// anything is sent: no container changed on any node, no lock taken; the
// message shows the offered key's fingerprint and the known_hosts file and
// line of the recorded one.
func TestReliabilitySwappedHostKey(t *testing.T) {
	c := testcluster.Require(t)
	c.Exclusive(t) // SwapHostKey below: hold the cluster before the first apply
	scenarioRun(t, scHostKey)
	const port = 18912
	project := testcluster.ProjectName(t)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": rWeb(imageOf("v1"), port, "200ms", 3, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	before := map[string][]ctr{}
	for _, n := range c.Nodes {
		before[n.Name] = containersOf(t, c, n.Name, project)
	}
	c.SwapHostKey(t, "node2")
	node2 := c.Node(t, "node2")
	newFP := fingerprintOf(t, filepath.Join(c.Dir, "node2", "ssh_host_ed25519_key.alt.pub"))
	line := knownHostsLine(t, c.KnownHosts, node2.Addr)
	want := []string{"node2", "CHANGED", newFP, fmt.Sprintf("%s:%d", c.KnownHosts, line), node2.HostKeyFingerprint}

	writeMain(t, dir, rWeb(imageOf("v2"), port, "200ms", 3, ""))
	var slowest time.Duration
	for _, args := range [][]string{{"apply", "-auto-approve", dir}, {"plan", dir}, {"destroy", "-auto-approve", dir}} {
		t0 := time.Now()
		r := berthT(t, time.Minute, nil, args...)
		slowest = max(slowest, time.Since(t0))
		if r.code != 1 {
			t.Fatalf("berth %s with node2's host key swapped: want exit 1:\n%s", args[0], r)
		}
		for _, w := range want {
			if !strings.Contains(r.err, w) {
				t.Fatalf("berth %s: the error lacks %q:\n%s", args[0], w, r)
			}
		}
	}
	for _, n := range c.Nodes {
		after := containersOf(t, c, n.Name, project)
		if fmt.Sprint(after) != fmt.Sprint(before[n.Name]) || len(after) != 1 || after[0].ID != before[n.Name][0].ID {
			t.Fatalf("%s changed although the apply was refused: %v -> %v", n.Name, before[n.Name], after)
		}
	}
	assertNoLock(t, c, project)
	for _, n := range c.Nodes {
		if body := get(n.Addr, port, "/"); !strings.Contains(body, "echo v1") {
			t.Fatalf("%s answers %q", n.Name, body)
		}
	}
	scenarioFigure(scHostKey, "apply, plan and destroy refused within %.1fs, 0 containers changed, no lock taken", slowest.Seconds())
}

func fingerprintOf(t *testing.T, pubFile string) string {
	t.Helper()
	b, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(k)
}

// knownHostsLine returns the 1-based line of file that records addr.
func knownHostsLine(t *testing.T, file, addr string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(l, "#") {
			for _, h := range strings.Split(f[0], ",") {
				if h == addr || h == "["+addr+"]:22" {
					return i + 1
				}
			}
		}
	}
	t.Fatalf("%s does not record %s", file, addr)
	return 0
}
