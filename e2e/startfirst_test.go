package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-dev/berth/internal/testcluster"
)

// startFirstHCL is service "web": three replicas on distinct nodes, no
// published port (so nothing forces stop-first), health probed over TCP on
// the container's port 8080, rolled out one replica at a time, start-first.
func startFirstHCL(image string) string {
	return fmt.Sprintf(`
service "web" {
  image             = %q
  replicas          = 3
  stop_grace_period = "1s"

  placement {
    max_per_node = 1
  }

  health {
    tcp      = true
    port     = 8080
    interval = "200ms"
  }

  update {
    parallelism = 1
    order       = "start-first"
    monitor     = "1s"
  }
}
`, image)
}

// runningSampler counts, straight from the three nodes' engines, the
// running containers of one service of a project, until stopped or until
// its deadline (it stops itself).
type runningSampler struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples []int    // running containers across the nodes, per sample
	errs    []string // failed reads
}

func startRunningSampler(t *testing.T, c *testcluster.Cluster, project, service string, deadline time.Duration) *runningSampler {
	s := &runningSampler{stop: make(chan struct{}), done: make(chan struct{})}
	f := filters.NewArgs(filters.Arg("label", "berth.project="+project), filters.Arg("label", "berth.service="+service),
		filters.Arg("status", "running"))
	clients := map[string]interface {
		ContainerList(context.Context, container.ListOptions) ([]container.Summary, error)
	}{}
	for _, n := range c.Nodes {
		clients[n.Name] = c.Docker(t, n.Name)
	}
	go func() {
		defer close(s.done)
		end := time.After(deadline)
		for {
			select {
			case <-s.stop:
				return
			case <-end:
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Sprintf("the sampler stopped itself after %s", deadline))
				s.mu.Unlock()
				return
			default:
			}
			// Nodes in parallel: with parallelism 1 only one node changes at
			// a time, so the per-node counts add up to a true total.
			var wg sync.WaitGroup
			var mu sync.Mutex
			total, failed := 0, false
			for name, cli := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					list, err := cli.ContainerList(ctx, container.ListOptions{Filters: f})
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed = true
						s.mu.Lock()
						s.errs = append(s.errs, fmt.Sprintf("%s: %v", name, err))
						s.mu.Unlock()
						return
					}
					total += len(list)
				}()
			}
			wg.Wait()
			if !failed {
				s.mu.Lock()
				s.samples = append(s.samples, total)
				s.mu.Unlock()
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	return s
}

func (s *runningSampler) finish() (samples []int, errs []string) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.errs
}

// A real start-first rolling update on Docker: three replicas on distinct
// nodes without a published port, updated v1 -> v2 one at a time. Read from
// the nodes' engines throughout, at least three replicas run at every
// sample, four at some (a new one started before its old one stopped), and
// at the end exactly three, all v2, one per node.
func TestRollingUpdateStartFirst(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": startFirstHCL(testcluster.ImageV1)})
	project := filepath.Base(dir)
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	for _, n := range c.Nodes {
		cs := containersOf(t, c, n.Name, project)
		if len(cs) != 1 || cs[0].State != "running" || cs[0].Image != testcluster.ImageV1 {
			t.Fatalf("%s after the first apply: %v", n.Name, cs)
		}
	}

	writeMain(t, dir, startFirstHCL(testcluster.ImageV2))
	s := startRunningSampler(t, c, project, "web", 3*time.Minute)
	r := berth(t, nil, "apply", "-auto-approve", "-json", dir)
	samples, errs := s.finish()
	if r.code != 0 {
		t.Fatalf("the update failed:\n%s", r)
	}
	ja := parseJSONApply(t, r.out)
	pa, _ := ja.Plan["actions"].([]any)
	if len(pa) != 3 {
		t.Fatalf("want 3 actions, got %d:\n%s", len(pa), r.out)
	}
	batches := map[float64]bool{}
	for _, x := range pa {
		a := x.(map[string]any)
		if a["kind"] != "replace" || a["order"] != "start-first" {
			t.Errorf("action %v %v %v: want a start-first replace", a["container"], a["kind"], a["order"])
		}
		batches[a["batch"].(float64)] = true
	}
	if len(batches) != 3 {
		t.Fatalf("want 3 batches (parallelism 1), got %v", batches)
	}
	if len(errs) > 0 {
		t.Fatalf("the sampler could not read the engines: %v", errs)
	}
	if len(samples) < 20 {
		t.Fatalf("only %d samples", len(samples))
	}
	least, most := slices.Min(samples), slices.Max(samples)
	t.Logf("%d samples, running replicas between %d and %d", len(samples), least, most)
	if least < 3 {
		t.Errorf("only %d replicas ran at some point of the start-first update (samples %v)", least, samples)
	}
	if most < 4 {
		t.Errorf("never 4 replicas at once: no new replica started before its old one stopped (samples %v)", samples)
	}
	// The end: exactly three, all v2, one per node, nothing set aside.
	total := 0
	for _, n := range c.Nodes {
		cs := containersOf(t, c, n.Name, project)
		total += len(cs)
		if len(cs) != 1 || cs[0].State != "running" || cs[0].Image != testcluster.ImageV2 || strings.Contains(cs[0].Name, "_berth_old_") {
			t.Errorf("%s after the update: %v", n.Name, cs)
		}
	}
	if total != 3 {
		t.Errorf("%d containers of %s after the update, want 3", total, project)
	}
}
