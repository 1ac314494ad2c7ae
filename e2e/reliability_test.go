package e2e

// The reliability and security suite (issue 8): berth's promises under the
// failures users meet, each case asserting the exact end state. Every
// scenario reports its runs into the summary table that TestMain prints
// (main_test.go). Run it alone with
//
//	scripts/testcluster up
//	BERTH_E2E=1 go test ./e2e -run Reliability -v
//
// Scenarios 1 and 2 run their cases in parallel over distinct projects and
// ports; the scenarios with faults (3, 4, 6) hold the cluster exclusively
// (testcluster's fault helpers) and never run in parallel with anything.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-dev/berth/internal/testcluster"
)

// rWeb is a service "web" with one replica on each of the three nodes,
// tuned for fast runs: health probed every 100 ms (with a start period, so
// that a server slow to listen on a loaded machine is not failed after three
// probes), a short monitor, a 1 s stop grace. parallelism 1 makes a rolling
// update of three batches.
func rWeb(image string, port int, monitor string, parallelism int, extra string) string {
	return fmt.Sprintf(`
service "web" {
  image             = %q
  replicas          = 3
  stop_grace_period = "1s"

  port {
    target    = 8080
    published = %d
  }

  placement {
    spread       = node.labels.zone
    max_per_node = 1
  }

  health {
    http         = "/healthz"
    interval     = "100ms"
    start_period = "5s"
  }

  update {
    parallelism = %d
    monitor     = %q
  }
%s}
`, image, port, parallelism, monitor, extra)
}

func writeMain(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func imageOf(version string) string { return "berth-test/echo:" + version }

func other(version string) string {
	if version == "v1" {
		return "v2"
	}
	return "v1"
}

// versions returns what each node's published port answers: "v1", "v2",
// or "" when nothing answers (after a few tries).
func versions(c *testcluster.Cluster, port int) map[string]string {
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := ""
			for try := 0; try < 3 && v == ""; try++ {
				if try > 0 {
					time.Sleep(200 * time.Millisecond)
				}
				if f := strings.Fields(get(n.Addr, port, "/")); len(f) >= 2 {
					v = f[1]
				}
			}
			mu.Lock()
			out[n.Name] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// uniform returns the version every node answers, or "" when they differ or
// one does not answer.
func uniform(vs map[string]string) string {
	v := ""
	for _, x := range vs {
		if x == "" || (v != "" && x != v) {
			return ""
		}
		v = x
	}
	return v
}

func assertServing(t *testing.T, c *testcluster.Cluster, port int, version string) {
	t.Helper()
	vs := versions(c, port)
	for _, n := range c.Nodes {
		if vs[n.Name] != version {
			t.Fatalf("want every replica serving %s; got %v", version, vs)
		}
	}
}

// ctr is a container as a node's engine reports it.
type ctr struct {
	ID, Name, Image, ImageID, State string
	Labels                          map[string]string
	Created                         int64
}

func (c ctr) String() string { return c.Name + " " + c.Image + " " + c.State }

// containersOf lists the project's containers on a node (all states), or
// every container of the engine when project is "".
func containersOf(t *testing.T, c *testcluster.Cluster, node, project string) []ctr {
	t.Helper()
	opts := container.ListOptions{All: true}
	if project != "" {
		opts.Filters = filters.NewArgs(filters.Arg("label", "berth.project="+project))
	}
	list, err := c.Docker(t, node).ContainerList(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []ctr
	for _, s := range list {
		out = append(out, ctr{ID: s.ID, Name: strings.TrimPrefix(s.Names[0], "/"), Image: s.Image, ImageID: s.ImageID,
			State: s.State, Labels: s.Labels, Created: s.Created})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// projectVolumes lists the volumes labelled with the project on a node.
func projectVolumes(t *testing.T, c *testcluster.Cluster, node, project string) []*volume.Volume {
	t.Helper()
	vs, err := c.Docker(t, node).VolumeList(context.Background(), volume.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", "berth.project="+project))})
	if err != nil {
		t.Fatal(err)
	}
	return vs.Volumes
}

// assertClean checks the end state of a 3-node "web" project: on every node
// exactly one container, web-N, running, none renamed aside; no lock,
// takeover or commit-marker volume left.
func assertClean(t *testing.T, c *testcluster.Cluster, project string) {
	t.Helper()
	seen := map[string]string{}
	for _, n := range c.Nodes {
		cs := containersOf(t, c, n.Name, project)
		if len(cs) != 1 {
			t.Fatalf("%s: want exactly one container of %s, got %v", n.Name, project, cs)
		}
		ct := cs[0]
		if strings.Contains(ct.Name, "_berth_old_") || ct.State != "running" || !strings.HasPrefix(ct.Name, project+"-web-") {
			t.Fatalf("%s: orphaned or stopped container: %v", n.Name, ct)
		}
		if prev, dup := seen[ct.Name]; dup {
			t.Fatalf("replica %s runs on both %s and %s", ct.Name, prev, n.Name)
		}
		seen[ct.Name] = n.Name
		for _, v := range projectVolumes(t, c, n.Name, project) {
			k := v.Labels["berth.kind"]
			if k == "lock" || k == "takeover" || k == "commit" {
				t.Fatalf("%s: %s volume %s left: %v", n.Name, k, v.Name, v.Labels)
			}
		}
	}
}

// berthT is berth with a deadline, so that a hang fails the case rather than
// the whole suite.
func berthT(t *testing.T, timeout time.Duration, env []string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := berthCtx(ctx, t, env, args...)
	if ctx.Err() != nil {
		t.Fatalf("berth %s did not finish within %s:\n%s", strings.Join(args, " "), timeout, r)
	}
	return r
}

var boundaryLine = regexp.MustCompile(`(?m)^berth: boundary (\S+) #(\d+)$`)

// boundaryCase is one (point, n) at which berth is killed.
type boundaryCase struct {
	point string
	n     int
}

func (b boundaryCase) String() string { return fmt.Sprintf("%s#%d", b.point, b.n) }

// afterCommit reports whether the boundary lies where the apply can no
// longer be rolled back: its commit marker is on every node.
func (b boundaryCase) afterCommit() bool { return b.point == "commit-marked" || b.point == "committed" }

// TestReliabilityKillAndInterruptAtEveryBoundary is scenarios 1 and 2: a
// rolling update v1 -> v2 of three replicas on three nodes (one batch per
// node), whose step boundaries are first listed by a traced run, then
// interrupted at each of them: by SIGKILL (the next apply must recover and
// leave every replica on the new version, nothing orphaned, the lock free)
// and by SIGINT (rolled back, exit 130, lock released). The cases run in
// parallel over six projects; each case starts from the state the previous
// case of its project left (updating to the other version).
func TestReliabilityKillAndInterruptAtEveryBoundary(t *testing.T) {
	c := testcluster.Require(t)
	const workers = 6
	const basePort = 18900

	// The traced run (the "dry run" that lists the boundaries) on worker 0's
	// project, which it leaves at v2.
	projects := make([]string, workers)
	dirs := make([]string, workers)
	for i := range projects {
		projects[i] = testcluster.ProjectName(t)
		dirs[i] = c.ConfigDirProject(t, projects[i], map[string]string{"main.hcl": rWeb(imageOf("v1"), basePort+i, "200ms", 1, "")})
	}
	mustBerth(t, nil, "apply", "-auto-approve", dirs[0])
	writeMain(t, dirs[0], rWeb(imageOf("v2"), basePort, "200ms", 1, ""))
	// Every per-replica boundary of the three batches, and the apply-wide ones.
	cases := tracedBoundaries(t, dirs[0], "locked#1", "preflight#1", "stopped#3", "renamed#3", "created#3", "started#3",
		"healthy#3", "action#3", "batch#3", "commit-marked#1", "committed#1")
	scenarioFigure(scKill, "%d boundaries", len(cases))
	scenarioFigure(scInterrupt, "%d boundaries", len(cases))

	type job struct {
		sig string // KILL or INT
		bc  boundaryCase
	}
	// All SIGKILL cases, then all SIGINT ones, dealt round-robin: each
	// worker gets a mix of both.
	var jobs []job
	for _, sig := range []string{"KILL", "INT"} {
		for _, bc := range cases {
			jobs = append(jobs, job{sig, bc})
		}
	}
	// The workers are goroutines calling t.Run, not parallel subtests:
	// go test runs at most GOMAXPROCS (2 here) of those at once, and
	// these cases mostly wait on the engines.
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			project, dir, port := projects[w], dirs[w], basePort+w
			for i := w; i < len(jobs); i += workers {
				j := jobs[i]
				t.Run("SIG"+j.sig+"-"+j.bc.String(), func(t *testing.T) {
					if j.sig == "KILL" {
						scenarioRun(t, scKill)
					} else {
						scenarioRun(t, scInterrupt)
					}
					from := uniform(versions(c, port))
					if from == "" {
						// A fresh project, or a failed case left a mix: start over from v1.
						writeMain(t, dir, rWeb(imageOf("v1"), port, "200ms", 1, ""))
						berthT(t, 2*time.Minute, nil, "apply", "-auto-approve", dir)
						assertServing(t, c, port, "v1")
						from = "v1"
					}
					to := other(from)
					writeMain(t, dir, rWeb(imageOf(to), port, "200ms", 1, ""))
					env := []string{"BERTH_TEST_KILL_AT=" + j.bc.String()}
					if j.sig == "INT" {
						env = append(env, "BERTH_TEST_KILL_SIGNAL=INT")
					}
					r := berthT(t, 2*time.Minute, env, "apply", "-auto-approve", dir)
					if j.sig == "KILL" {
						killedThenRecovered(t, c, project, dir, port, to, r)
					} else {
						interruptedRolledBack(t, c, project, dir, port, from, to, j.bc, r)
					}
				})
			}
		}()
	}
	wg.Wait()
}

// killedThenRecovered checks a run killed at a boundary, then the next
// apply: every replica on the new version, nothing orphaned or duplicated,
// the lock free, and after a recovery nothing left to plan.
func killedThenRecovered(t *testing.T, c *testcluster.Cluster, project, dir string, port int, to string, r run) {
	t.Helper()
	if r.code != -1 || !strings.Contains(r.err, "test hook: sending killed") {
		t.Fatalf("berth was not killed at the boundary:\n%s", r)
	}
	// It died holding the lock; did it leave containers aside?
	aside := false
	for _, n := range c.Nodes {
		for _, ct := range containersOf(t, c, n.Name, project) {
			aside = aside || strings.Contains(ct.Name, "_berth_old_")
		}
	}
	rec := berthT(t, 2*time.Minute, nil, "apply", "-auto-approve", dir)
	if rec.code != 0 {
		t.Fatalf("the apply after the kill failed:\n%s", rec)
	}
	if aside && !strings.Contains(rec.out, "An interrupted apply") {
		t.Fatalf("containers were left aside, but the next apply does not say it recovers an interrupted apply:\n%s", rec)
	}
	assertServing(t, c, port, to)
	assertClean(t, c, project)
	if aside {
		// What recovery restored carries consistent labels: nothing to do.
		if p := berthT(t, time.Minute, nil, "plan", "-detailed-exitcode", dir); p.code != 0 {
			t.Fatalf("plan after recovery is not empty:\n%s", p)
		}
	}
}

// interruptedRolledBack checks a run interrupted (SIGINT) at a boundary:
// before the commit it rolls back and exits 130 with the lock released;
// from the commit marker on, the apply is finished (exit 0).
func interruptedRolledBack(t *testing.T, c *testcluster.Cluster, project, dir string, port int, from, to string, bc boundaryCase, r run) {
	t.Helper()
	if !strings.Contains(r.err, "test hook: sending interrupt") {
		t.Fatalf("berth did not reach the boundary:\n%s", r)
	}
	if bc.afterCommit() {
		if r.code != 0 || !strings.Contains(r.out, "Apply complete!") {
			t.Fatalf("SIGINT after the commit marker: want the apply finished (exit 0):\n%s", r)
		}
		assertServing(t, c, port, to)
	} else {
		if r.code != 130 {
			t.Fatalf("SIGINT: want exit 130, got %d:\n%s", r.code, r)
		}
		if !strings.Contains(r.err, "interrupted") || !strings.Contains(r.err, "Rolled back") {
			t.Fatalf("SIGINT: the error does not say it was interrupted and rolled back:\n%s", r)
		}
		assertServing(t, c, port, from)
	}
	assertClean(t, c, project)
	assertNoLock(t, c, project)
}

// tracedBoundaries runs berth apply on dir with the trace hook and returns
// the step boundaries it passed, in order; the test fails unless every one
// of want is among them.
func tracedBoundaries(t *testing.T, dir string, want ...string) []boundaryCase {
	t.Helper()
	tr := mustBerth(t, []string{"BERTH_TEST_KILL_AT=trace"}, "apply", "-auto-approve", dir)
	var cases []boundaryCase
	for _, m := range boundaryLine.FindAllStringSubmatch(tr.err, -1) {
		var n int
		fmt.Sscanf(m[2], "%d", &n)
		cases = append(cases, boundaryCase{m[1], n})
	}
	for _, w := range want {
		found := false
		for _, bc := range cases {
			found = found || bc.String() == w
		}
		if !found {
			t.Fatalf("the traced apply did not reach boundary %s; it listed %v", w, cases)
		}
	}
	t.Logf("%d boundaries: %v", len(cases), cases)
	return cases
}
