package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/testcluster"
)

// webHCL is a service published on port on every node, one replica each.
func webHCL(name, image string, port int, extra string) string {
	return fmt.Sprintf(`
service %q {
  image    = %q
  replicas = 3

  port {
    target    = 8080
    published = %d
  }

  placement {
    spread       = node.labels.zone
    max_per_node = 1
  }

  health {
    http     = "/healthz"
    interval = "200ms"
  }

  update {
    monitor = "1s"
  }
%s}
`, name, image, port, extra)
}

func setImage(t *testing.T, dir, from, to string) {
	t.Helper()
	p := filepath.Join(dir, "main.hcl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), from, to)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestApplyFreshThreeServices(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": webHCL("web", testcluster.ImageV1, 18101, "") + `
service "api" {
  image    = "berth-test/echo:v2"
  replicas = 2
  port {
    target    = 8080
    published = 18102
  }
  placement {
    constraint = node.labels.role == "web"
  }
  health {
    tcp = true
  }
  update {
    monitor = "500ms"
  }
}

service "db" {
  image      = "berth-test/echo:v1"
  depends_on = ["api"]
  port {
    target    = 8080
    published = 18103
  }
  placement {
    constraint = node.labels.role == "db"
  }
  volume {
    source = "` + project + `-data"
    target = "/data"
  }
}
`})
	r := mustBerth(t, nil, "apply", "-auto-approve", "-json", dir)
	ja := parseJSONApply(t, r.out)
	if ja.Result["result"] != "applied" {
		t.Fatalf("result: %v\n%s", ja.Result, r)
	}
	// The actions executed equal the plan's actions, as JSON, every field
	// (batch and step included), and ran in the plan's batches.
	pa, _ := ja.Plan["actions"].([]any)
	da, _ := ja.Result["done"].([]any)
	if len(pa) != 6 {
		t.Fatalf("planned %d actions, want 6:\n%s", len(pa), r.out)
	}
	checkExecutedAsPlanned(t, pa, da, ja.Events)
	// Every replica runs where the plan said and answers on that node only.
	addr := map[string]string{}
	for _, n := range c.Nodes {
		addr[n.Name] = n.Addr
	}
	ports := map[string]int{"web": 18101, "api": 18102, "db": 18103}
	for _, x := range pa {
		a := x.(map[string]any)
		node, svc := a["node"].(string), a["service"].(string)
		if body := get(addr[node], ports[svc], "/"); !strings.Contains(body, "echo v") {
			t.Fatalf("%s on %s does not answer: %q", svc, node, body)
		}
		found := false
		for _, l := range projectContainers(t, c, node, project) {
			if strings.HasPrefix(l, a["container"].(string)+" ") && strings.HasSuffix(l, " running") {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s not running on %s", a["container"], node)
		}
	}
	if body := get(addr["node3"], 18102, "/"); body != "" {
		t.Fatalf("api answers on node3, where the plan put none: %q", body)
	}
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 0 || !strings.Contains(r.out, "No changes.") {
		t.Fatalf("plan after apply is not empty:\n%s", r)
	}
	// status shows the last apply's audit record.
	r = mustBerth(t, nil, "status", dir)
	if !strings.Contains(r.out, "applied") {
		t.Fatalf("status does not show the audit record:\n%s", r)
	}
}

// checkExecutedAsPlanned checks an apply's result against its plan (both
// from apply -json): the executed actions (done, in completion order) are
// the planned ones, field for field as JSON; they completed batch by batch
// in the plan's order; and in the event stream no action of a batch began
// before every action of the earlier batches had completed.
func checkExecutedAsPlanned(t *testing.T, planned, done []any, events []map[string]any) {
	t.Helper()
	num := func(a any, k string) int {
		f, _ := a.(map[string]any)[k].(float64)
		return int(f)
	}
	for i := 1; i < len(planned); i++ {
		if num(planned[i], "step") <= num(planned[i-1], "step") || num(planned[i], "batch") < num(planned[i-1], "batch") {
			t.Fatalf("the plan's actions are not in step and batch order: %v then %v", planned[i-1], planned[i])
		}
	}
	for i := 1; i < len(done); i++ {
		if num(done[i], "batch") < num(done[i-1], "batch") {
			t.Errorf("action %d (batch %d) completed after action %d (batch %d): not in the plan's batch order",
				num(done[i], "step"), num(done[i], "batch"), num(done[i-1], "step"), num(done[i-1], "batch"))
		}
	}
	// Within a batch, nodes run in parallel: completion order is free there.
	byStep := slices.Clone(done)
	slices.SortStableFunc(byStep, func(a, b any) int { return num(a, "step") - num(b, "step") })
	if diff := cmp.Diff(planned, byStep); diff != "" {
		pj, _ := json.MarshalIndent(planned, "", "  ")
		dj, _ := json.MarshalIndent(byStep, "", "  ")
		t.Fatalf("the executed actions differ from the plan's (-planned +executed):\n%s\nplanned:\n%s\nexecuted:\n%s", diff, pj, dj)
	}
	inBatch := map[int]int{}
	for _, a := range planned {
		inBatch[num(a, "batch")]++
	}
	completed := map[int]int{}
	for _, ev := range events {
		b := num(ev, "batch")
		switch ev["type"] {
		case "step":
			for eb, n := range inBatch {
				if eb < b && completed[eb] != n {
					t.Fatalf("batch %d began (%v) with %d of batch %d's %d actions completed", b, ev["message"], completed[eb], eb, n)
				}
			}
		case "action_done":
			completed[b]++
		}
	}
	for b, n := range inBatch {
		if completed[b] != n {
			t.Fatalf("batch %d: %d action_done events, want %d", b, completed[b], n)
		}
	}
}

func TestRollingUpdateKeepsTwoReplicasServing(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": webHCL("web", testcluster.ImageV1, 18111, `
  update {
    parallelism = 1
    order       = "start-first"
    monitor     = "1s"
  }
`)})
	// webHCL has its own update block; drop the first one.
	p := filepath.Join(dir, "main.hcl")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "  update {\n    monitor = \"1s\"\n  }\n", "", 1)), 0o644)
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	setImage(t, dir, testcluster.ImageV1, testcluster.ImageV2)
	pl := startPoller(c, 18111)
	r := mustBerth(t, nil, "apply", "-auto-approve", dir)
	minUp, rounds, versions := pl.finish()
	if rounds < 20 {
		t.Fatalf("the poller ran only %d rounds", rounds)
	}
	if minUp < 2 {
		t.Fatalf("only %d replicas answered at some point during the rolling update", minUp)
	}
	if !versions["v1"] || !versions["v2"] {
		t.Fatalf("poller saw versions %v; want both v1 and v2", versions)
	}
	if !strings.Contains(r.out, "stop-first: port 18111/tcp") {
		t.Fatalf("the plan does not say why it stops first:\n%s", r.out)
	}
	for _, n := range c.Nodes {
		if body := get(n.Addr, 18111, "/"); !strings.Contains(body, "v2") {
			t.Fatalf("%s answers %q after the update", n.Name, body)
		}
	}
}

func TestBrokenUpdateRollsBack(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": webHCL("web", testcluster.ImageV1, 18121, "")})
	project := filepath.Base(dir)
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	setImage(t, dir, testcluster.ImageV1, testcluster.ImageBroken)
	r := berth(t, nil, "apply", "-auto-approve", dir)
	if r.code == 0 {
		t.Fatalf("apply of a broken image succeeded:\n%s", r)
	}
	for _, want := range []string{`service "web" replica 1 on node node1`, "last log lines", "broken", "Rolled back"} {
		if !strings.Contains(r.err, want) {
			t.Fatalf("error lacks %q:\n%s", want, r)
		}
	}
	for _, n := range c.Nodes {
		if body := get(n.Addr, 18121, "/"); !strings.Contains(body, "v1") {
			t.Fatalf("%s answers %q after the rollback", n.Name, body)
		}
		for _, l := range projectContainers(t, c, n.Name, project) {
			if !strings.Contains(l, testcluster.ImageV1) || strings.Contains(l, "_berth_old_") {
				t.Fatalf("%s: container left by the failed apply: %s", n.Name, l)
			}
		}
	}
	setImage(t, dir, testcluster.ImageBroken, testcluster.ImageV1)
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 0 {
		t.Fatalf("plan after rollback is not empty:\n%s", r)
	}
}

func TestSecondServiceFailsFirstRolledBack(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": webHCL("api", testcluster.ImageV1, 18131, "") +
		webHCL("web", testcluster.ImageV1, 18132, "  depends_on = [\"api\"]\n")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	p := filepath.Join(dir, "main.hcl")
	b, _ := os.ReadFile(p)
	s := strings.Replace(string(b), testcluster.ImageV1, testcluster.ImageV2, 1) // api -> v2
	s = strings.Replace(s, testcluster.ImageV1, testcluster.ImageBroken, 1)      // web -> broken
	os.WriteFile(p, []byte(s), 0o644)
	r := berth(t, nil, "apply", "-auto-approve", dir)
	if r.code == 0 || !strings.Contains(r.err, "Rolled back") {
		t.Fatalf("want a rolled back failure:\n%s", r)
	}
	for _, n := range c.Nodes {
		if body := get(n.Addr, 18131, "/"); !strings.Contains(body, "v1") {
			t.Fatalf("api on %s answers %q: not rolled back", n.Name, body)
		}
	}
}

func TestInterruptRollsBackAndKillRecovers(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": webHCL("web", testcluster.ImageV1, 18141, "")})
	project := filepath.Base(dir)
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	setImage(t, dir, testcluster.ImageV1, testcluster.ImageV2)

	// SIGINT in the middle of the second replica: rolled back, lock free.
	r := berth(t, []string{"BERTH_TEST_KILL_AT=created#2", "BERTH_TEST_KILL_SIGNAL=INT"}, "apply", "-auto-approve", dir)
	if r.code != 130 || !strings.Contains(r.err, "Rolled back") {
		t.Fatalf("SIGINT: want exit 130 and a rollback:\n%s", r)
	}
	for _, n := range c.Nodes {
		if body := get(n.Addr, 18141, "/"); !strings.Contains(body, "v1") {
			t.Fatalf("%s answers %q after SIGINT", n.Name, body)
		}
	}
	assertNoLock(t, c, project)

	// SIGKILL in the middle: the next apply recovers, then applies.
	r = berth(t, []string{"BERTH_TEST_KILL_AT=created#2"}, "apply", "-auto-approve", dir)
	if r.code != -1 {
		t.Fatalf("SIGKILL: berth was not killed:\n%s", r)
	}
	r = berth(t, nil, "plan", dir)
	if !strings.Contains(r.out, "An interrupted apply") {
		t.Fatalf("plan does not show the interrupted apply:\n%s", r)
	}
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	for _, n := range c.Nodes {
		if body := get(n.Addr, 18141, "/"); !strings.Contains(body, "v2") {
			t.Fatalf("%s answers %q after recovery", n.Name, body)
		}
		l := projectContainers(t, c, n.Name, project)
		if len(l) != 1 || strings.Contains(l[0], "_berth_old_") {
			t.Fatalf("%s: orphaned or duplicated containers: %v", n.Name, l)
		}
	}
	assertNoLock(t, c, project)
}

func assertNoLock(t *testing.T, c *testcluster.Cluster, project string) {
	t.Helper()
	for _, n := range c.Nodes {
		vs, err := c.Docker(t, n.Name).VolumeList(context.Background(), volumeListOptions("berth-lock-"+project))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs.Volumes {
			// The lock, or the plan recorded for it.
			if v.Name == "berth-lock-"+project || strings.HasPrefix(v.Name, "berth-lock-"+project+"-plan-") {
				t.Fatalf("lock left on %s: %v", n.Name, v.Labels)
			}
		}
	}
}

// lostHCL is service "web" on node1 and node3 and, rolled out after it,
// service "tail" on node2, all publishing port.
func lostHCL(image string, port int) string {
	svc := func(name, constraint string, replicas int, extra string) string {
		return fmt.Sprintf(`
service %q {
  image             = %q
  replicas          = %d
  stop_grace_period = "1s"
%s
  port {
    target    = 8080
    published = %d
  }

  placement {
    constraint   = %s
    max_per_node = 1
  }

  health {
    http     = "/healthz"
    interval = "200ms"
  }

  update {
    monitor = "1s"
  }
}
`, name, image, replicas, extra, port, constraint)
	}
	return svc("web", `node.name != "node2"`, 2, "") + svc("tail", `node.name == "node2"`, 1, `  depends_on        = ["web"]`+"\n")
}

// node2's sshd is killed once the replicas on node1 and node3 have been
// replaced: the apply fails naming node2, and the completed replacements on
// node1 and node3 are rolled back (their old containers restored, the new
// ones gone).
func TestNodeLostMidApplyRollsBackOthers(t *testing.T) {
	c := testcluster.Require(t)
	// Hold the cluster now, so that StopSSHD does not wait for other test
	// processes while the apply runs on.
	c.Exclusive(t)
	const port = 18151
	dir := c.ConfigDir(t, map[string]string{"main.hcl": lostHCL(testcluster.ImageV1, port)})
	project := filepath.Base(dir)
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	before := map[string][]string{}
	for _, n := range []string{"node1", "node3"} {
		before[n] = projectContainersByID(t, c, n, project)
		if len(before[n]) != 1 {
			t.Fatalf("%s: want one container of %s, got %q", n, project, before[n])
		}
	}
	writeMain(t, dir, lostHCL(testcluster.ImageV2, port))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := execCommand(ctx, testcluster.BuildBerth(t), "apply", "-auto-approve", "-json", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	doneOn := map[string]bool{}
	killed := false
	sc := newScanner(out)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		if ev["type"] == "action_done" {
			doneOn[fmt.Sprint(ev["node"])] = true
		}
		if !killed && doneOn["node1"] && doneOn["node3"] {
			killed = true
			c.StopSSHD(t, "node2")
		}
	}
	werr := cmd.Wait()
	all := strings.Join(lines, "\n") + "\n--- stderr\n" + stderr.String()
	if !killed {
		t.Fatalf("the replicas on node1 and node3 never completed:\n%s", all)
	}
	if werr == nil {
		t.Fatalf("apply succeeded with node2 lost:\n%s", all)
	}
	ja := parseJSONApply(t, strings.Join(lines, "\n"))
	if ja.Result == nil {
		t.Fatalf("no result line:\n%s", all)
	}
	// The failure itself, not the plan (which names every node), must name
	// node2: the result's error, the action_failed event and the Error line.
	// node2 is gone: when the run had already set its old container aside
	// there, that one undo cannot be done, and the result says so.
	msg, _ := ja.Result["error"].(string)
	switch ja.Result["result"] {
	case "rolled back":
	case "rollback incomplete":
		if !strings.Contains(msg, "Rollback incomplete") || !strings.Contains(msg[strings.Index(msg, "Rollback incomplete"):], "node2") {
			t.Errorf("incomplete rollback that does not name node2:\n%s", msg)
		}
	default:
		t.Errorf("result %v, want rolled back (or rollback incomplete on node2)", ja.Result["result"])
	}
	if !strings.Contains(msg, `service "tail" replica 1 on node node2`) || !strings.Contains(msg, "Roll") {
		t.Errorf("the result's error does not name tail's replica on node2 or the rollback:\n%s", msg)
	}
	var failedOn, undoneOn []string
	for _, ev := range ja.Events {
		switch ev["type"] {
		case "action_failed":
			failedOn = append(failedOn, fmt.Sprint(ev["node"]))
		case "undo":
			undoneOn = append(undoneOn, fmt.Sprint(ev["node"]))
		}
	}
	if !slices.Equal(failedOn, []string{"node2"}) {
		t.Errorf("action_failed events on %q, want node2 only", failedOn)
	}
	slices.Sort(undoneOn)
	if !slices.Contains(undoneOn, "node1") || !slices.Contains(undoneOn, "node3") {
		t.Errorf("undo events on %q, want node1 and node3", undoneOn)
	}
	errLine := ""
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "Error: ") {
			errLine = l
			break
		}
	}
	if !strings.Contains(errLine, "node node2") {
		t.Errorf("the Error line does not name node2: %q\n%s", errLine, stderr.String())
	}
	// node1 and node3: their own old containers back, running v1, nothing
	// of the failed apply left.
	for _, n := range []string{"node1", "node3"} {
		if got := projectContainersByID(t, c, n, project); !slices.Equal(got, before[n]) {
			t.Errorf("%s not rolled back:\n  before %q\n  after  %q", n, before[n], got)
		}
		if body := get(c.Node(t, n).Addr, port, "/"); !strings.HasPrefix(body, "echo v1") {
			t.Errorf("%s answers %q: not rolled back", n, body)
		}
	}
	if t.Failed() {
		t.Logf("apply output:\n%s", all)
		return
	}
	// With node2 back, the v1 configuration applies cleanly everywhere.
	c.StartSSHD(t, "node2")
	writeMain(t, dir, lostHCL(testcluster.ImageV1, port))
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	for _, n := range c.Nodes {
		cs := containersOf(t, c, n.Name, project)
		if len(cs) != 1 || cs[0].State != "running" || cs[0].Image != testcluster.ImageV1 || strings.Contains(cs[0].Name, "_berth_old_") {
			t.Errorf("%s after recovery: %v", n.Name, cs)
		}
		if body := get(n.Addr, port, "/"); !strings.HasPrefix(body, "echo v1") {
			t.Errorf("%s answers %q after recovery", n.Name, body)
		}
	}
}

// Two applies of the same project at once, each with work to do: one runs,
// the other fails at once naming the holder: the other run's user@host and
// pid, its lock ID, and how to force-unlock it.
func TestConcurrentAppliesOneWaitsOrFails(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	dirs := make([]string, 2)
	for i := range dirs {
		dirs[i] = c.ConfigDirProject(t, project, map[string]string{"main.hcl": webHCL("web", testcluster.ImageV1, 18161,
			fmt.Sprintf("  env = {\n    NODE = \"run%d\"\n  }\n", i))})
	}
	ws := make([]*applyWindow, len(dirs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ws[i] = runWindow(t, i, []string{"apply", "-auto-approve", "-json", dirs[i]})
		}()
	}
	close(start)
	wg.Wait()
	who, _ := user.Current()
	name := os.Getenv("USER")
	if name == "" && who != nil {
		name = who.Username
	}
	host, _ := os.Hostname()
	holder := regexp.MustCompile(`the project is locked on node (node\d) by (\S+) \(pid (\d+), since [^,]+, lock ID ([0-9a-f]+)\)(?:, still planning| for plan [0-9a-f]+);.*berth force-unlock ([0-9a-f]+)`)
	var ran, lost []*applyWindow
	for _, w := range ws {
		switch {
		case w.code == 0 && w.ranAction:
			ran = append(ran, w)
		case w.code == 1 && !w.ranAction:
			lost = append(lost, w)
		default:
			t.Fatalf("run %d: exit %d (ran actions: %v):\n%s\n%s", w.run, w.code, w.ranAction, w.out, w.err)
		}
	}
	if len(ran) != 1 || len(lost) != 1 {
		t.Fatalf("%d applies ran, %d failed; want one of each:\n%s\n%s\n\n%s\n%s", len(ran), len(lost),
			ws[0].out, ws[0].err, ws[1].out, ws[1].err)
	}
	m := holder.FindStringSubmatch(lost[0].err)
	if m == nil {
		t.Fatalf("the losing apply does not name the holder:\n%s", lost[0].err)
	}
	if want := name + "@" + host; m[2] != want {
		t.Errorf("holder %q, want %q", m[2], want)
	}
	if pid, _ := strconv.Atoi(m[3]); pid != ran[0].pid {
		t.Errorf("the loser names pid %s as the holder; the apply that ran was pid %d", m[3], ran[0].pid)
	}
	if m[4] != m[5] {
		t.Errorf("lock ID %s, but force-unlock %s", m[4], m[5])
	}
	for _, n := range c.Nodes {
		if body := get(n.Addr, 18161, "/"); body != fmt.Sprintf("echo v1 on run%d\n", ran[0].run) {
			t.Errorf("%s answers %q; the apply that ran was run %d", n.Name, body, ran[0].run)
		}
	}
	assertNoLock(t, c, project)
}

func TestStalePlanRefusedFreshApplies(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": webHCL("web", testcluster.ImageV1, 18171, "")})
	planFile := filepath.Join(t.TempDir(), "web.plan")
	mustBerth(t, nil, "plan", "-out", planFile, dir)
	if fi, err := os.Stat(planFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("plan file mode: %v %v", fi.Mode(), err)
	}
	// Someone deploys in between: the saved plan is stale.
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	r := berth(t, nil, "apply", planFile)
	if r.code == 0 || !strings.Contains(r.err, "stale plan") || !strings.Contains(r.err, "node node1") {
		t.Fatalf("stale plan not refused:\n%s", r)
	}
	setImage(t, dir, testcluster.ImageV1, testcluster.ImageV2)
	mustBerth(t, nil, "plan", "-out", planFile, dir)
	mustBerth(t, nil, "apply", planFile)
	for _, n := range c.Nodes {
		if body := get(n.Addr, 18171, "/"); !strings.Contains(body, "v2") {
			t.Fatalf("%s answers %q", n.Name, body)
		}
	}
}

func TestVolumeDataSurvivesUpdateAndRollback(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	vol := project + "-data"
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": `
service "store" {
  image = "berth-test/echo:v1"
  port {
    target    = 8080
    published = 18181
  }
  placement {
    constraint = node.name == "node1"
  }
  volume {
    source = "` + vol + `"
    target = "/data"
  }
  health {
    http = "/healthz"
  }
  update {
    monitor = "500ms"
  }
}
`})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	addr := c.Nodes[0].Addr
	if body := get(addr, 18181, "/write?f=k&v=kept"); body == "" {
		t.Fatal("write to the volume failed")
	}
	setImage(t, dir, testcluster.ImageV1, testcluster.ImageV2)
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	if body := get(addr, 18181, "/read?f=k"); !strings.Contains(body, "kept") {
		t.Fatalf("after the update the volume holds %q", body)
	}
	setImage(t, dir, testcluster.ImageV2, testcluster.ImageBroken)
	if r := berth(t, nil, "apply", "-auto-approve", dir); r.code == 0 {
		t.Fatal("broken apply succeeded")
	}
	if body := get(addr, 18181, "/read?f=k"); !strings.Contains(body, "kept") {
		t.Fatalf("after the rollback the volume holds %q", body)
	}
	// destroy keeps the volume; destroy -volumes removes it.
	mustBerth(t, nil, "destroy", "-auto-approve", dir)
	if !volumeExists(t, c, "node1", vol) {
		t.Fatal("destroy removed the named volume")
	}
	setImage(t, dir, testcluster.ImageBroken, testcluster.ImageV1)
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	if body := get(addr, 18181, "/read?f=k"); !strings.Contains(body, "kept") {
		t.Fatalf("after destroy and apply the volume holds %q", body)
	}
	mustBerth(t, nil, "destroy", "-auto-approve", "-volumes", dir)
	if volumeExists(t, c, "node1", vol) {
		t.Fatal("destroy -volumes kept the named volume")
	}
}

// force-unlock with an ID that matches no lock removes nothing and names
// the lock that is held, node by node: holder, pid, since, lock ID; that ID
// then removes it.
func TestForceUnlockWrongIDNamesTheHeldLock(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": webHCL("web", testcluster.ImageV1, 18191, "")})
	held := []string{"node1", "node2"}
	for _, n := range held {
		if _, err := c.Docker(t, n).VolumeCreate(context.Background(), volume.CreateOptions{Name: "berth-lock-" + project, Labels: map[string]string{
			"berth.kind": "lock", "berth.project": project, "berth.apply": "dead1234", "berth.plan": "",
			"berth.holder": "carol@elsewhere", "berth.host": "elsewhere", "berth.pid": "4321", "berth.since": "2025-03-01T12:00:00Z",
		}}); err != nil {
			t.Fatal(err)
		}
	}
	r := berth(t, nil, "force-unlock", "beef0000", dir)
	if r.code != 1 || !strings.Contains(r.err, "no lock with ID beef0000") {
		t.Fatalf("force-unlock of a wrong ID:\n%s", r)
	}
	for _, n := range held {
		if want := "on node " + n + " by carol@elsewhere (pid 4321, since 2025-03-01T12:00:00Z, lock ID dead1234)"; !strings.Contains(r.err, want) {
			t.Errorf("the error does not name the lock on %s (%q):\n%s", n, want, r.err)
		}
	}
	r = mustBerth(t, nil, "force-unlock", "dead1234", dir)
	if !strings.Contains(r.out, "Lock dead1234 removed from node1, node2.") {
		t.Errorf("force-unlock:\n%s", r)
	}
	assertNoLock(t, c, project)
}
