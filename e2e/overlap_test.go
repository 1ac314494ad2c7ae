package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testcluster"
)

// overlapHCL is service "web": three replicas, one per node, no published
// port (nothing forces stop-first), health probed over TCP, rolled out one
// replica at a time, start-first: each batch's old container is stopped
// while the next batch starts.
func overlapHCL(image string) string {
	return fmt.Sprintf(`
service "web" {
  image             = %q
  replicas          = 3
  stop_grace_period = "1s"

  placement {
    max_per_node = 1
  }

  health {
    tcp          = true
    port         = 8080
    interval     = "100ms"
    start_period = "5s"
  }

  update {
    parallelism = 1
    order       = "start-first"
    monitor     = "200ms"
  }
}
`, image)
}

// pf18Project is a project name of this file's tests: pf18-NAME-<hex>.
func pf18Project(name string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return "pf18-" + name + "-" + hex.EncodeToString(b)
}

// webVersion is the version ("v1", "v2") every node's one web replica of
// project runs, or "" when the nodes differ, a node has another count of
// containers, or one is set aside or not running.
func webVersion(t *testing.T, c *testcluster.Cluster, project string) string {
	t.Helper()
	v := ""
	for _, n := range c.Nodes {
		cs := containersOf(t, c, n.Name, project)
		if len(cs) != 1 || cs[0].State != "running" || strings.Contains(cs[0].Name, "_berth_") || !strings.HasPrefix(cs[0].Name, project+"-web-") {
			return ""
		}
		x := strings.TrimPrefix(cs[0].Image, "berth-test/echo:")
		if v != "" && x != v {
			return ""
		}
		v = x
	}
	return v
}

// TestReliabilityKillOverlappedRollout is scenarios 1 and 2 for a
// start-first rolling update, where each batch's old container is stopped
// while the next batch starts: berth is killed (SIGKILL) or interrupted
// (SIGINT) at every step boundary of a traced run. Killed: the next apply
// recovers, every replica runs the new version, nothing is left aside and
// the plan is empty. Interrupted: exit 130, rolled back to the old version,
// the lock released.
func TestReliabilityKillOverlappedRollout(t *testing.T) {
	c := testcluster.Require(t)
	const workers = 3
	projects := make([]string, workers)
	dirs := make([]string, workers)
	for i := range projects {
		projects[i] = pf18Project(fmt.Sprintf("ovk%d", i))
		dirs[i] = c.ConfigDirProject(t, projects[i], map[string]string{"main.hcl": overlapHCL(imageOf("v1"))})
	}
	mustBerth(t, nil, "apply", "-auto-approve", dirs[0])
	writeMain(t, dirs[0], overlapHCL(imageOf("v2")))
	cases := tracedBoundaries(t, dirs[0], "locked#1", "preflight#1", "renamed#3", "created#3", "started#3", "healthy#3",
		"stopped#3", "action#3", "batch#3", "commit-marked#1", "committed#1")

	type job struct {
		sig string
		bc  boundaryCase
	}
	var jobs []job
	for _, sig := range []string{"KILL", "INT"} {
		for _, bc := range cases {
			jobs = append(jobs, job{sig, bc})
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			project, dir := projects[w], dirs[w]
			for i := w; i < len(jobs); i += workers {
				j := jobs[i]
				t.Run("SIG"+j.sig+"-"+j.bc.String(), func(t *testing.T) {
					from := webVersion(t, c, project)
					if from == "" {
						writeMain(t, dir, overlapHCL(imageOf("v1")))
						berthT(t, 2*time.Minute, nil, "apply", "-auto-approve", dir)
						if from = webVersion(t, c, project); from != "v1" {
							t.Fatalf("could not start over from v1")
						}
					}
					to := other(from)
					writeMain(t, dir, overlapHCL(imageOf(to)))
					env := []string{"BERTH_TEST_KILL_AT=" + j.bc.String()}
					if j.sig == "INT" {
						env = append(env, "BERTH_TEST_KILL_SIGNAL=INT")
					}
					r := berthT(t, 2*time.Minute, env, "apply", "-auto-approve", dir)
					if j.sig == "KILL" {
						if r.code != -1 || !strings.Contains(r.err, "test hook: sending killed") {
							t.Fatalf("berth was not killed at the boundary:\n%s", r)
						}
						rec := berthT(t, 2*time.Minute, nil, "apply", "-auto-approve", dir)
						if rec.code != 0 {
							t.Fatalf("the apply after the kill failed:\n%s", rec)
						}
						if v := webVersion(t, c, project); v != to {
							t.Fatalf("after the recovering apply: want every replica on %s, one per node, nothing aside; got %q", to, v)
						}
						if p := berthT(t, time.Minute, nil, "plan", "-detailed-exitcode", dir); p.code != 0 {
							t.Fatalf("plan after recovery is not empty:\n%s", p)
						}
					} else {
						if !strings.Contains(r.err, "test hook: sending interrupt") {
							t.Fatalf("berth did not reach the boundary:\n%s", r)
						}
						want := from
						if j.bc.afterCommit() {
							want = to
							if r.code != 0 {
								t.Fatalf("SIGINT after the commit marker: want the apply finished (exit 0):\n%s", r)
							}
						} else if r.code != 130 || !strings.Contains(r.err, "interrupted") || !strings.Contains(r.err, "Rolled back") {
							t.Fatalf("SIGINT: want exit 130, interrupted and rolled back:\n%s", r)
						}
						if v := webVersion(t, c, project); v != want {
							t.Fatalf("after SIGINT at %s: want every replica on %s, nothing aside; got %q", j.bc, want, v)
						}
					}
					assertNoLock(t, c, project)
				})
			}
		}()
	}
	wg.Wait()
}
