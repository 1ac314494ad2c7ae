// Package e2e holds berth's end-to-end tests: the berth binary against the
// local three-node test cluster (scripts/testcluster). They run when
// BERTH_E2E=1 (scripts/test sets it) and skip with the reason otherwise.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-dev/berth/internal/testcluster"
)

// run is one berth invocation's result.
type run struct {
	out, err string
	code     int
}

func (r run) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.code, r.out, r.err)
}

// berth runs the berth binary with args in dir's parent and env added.
func berth(t *testing.T, env []string, args ...string) run {
	t.Helper()
	return berthCtx(context.Background(), t, env, args...)
}

func berthCtx(ctx context.Context, t *testing.T, env []string, args ...string) run {
	t.Helper()
	bin := testcluster.BuildBerth(t)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := run{out: o.String(), err: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		if r.code < 0 {
			r.code = -1 // killed by a signal
		}
	} else if err != nil {
		t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("berth %s -> exit %d", strings.Join(args, " "), r.code)
	return r
}

// mustBerth runs berth and fails the test unless it exits 0.
func mustBerth(t *testing.T, env []string, args ...string) run {
	t.Helper()
	r := berth(t, env, args...)
	if r.code != 0 {
		t.Fatalf("berth %s failed:\n%s", strings.Join(args, " "), r)
	}
	return r
}

// get fetches http://addr:port/path, returning the body or "" on any error.
func get(addr string, port int, path string) string {
	c := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d%s", addr, port, path))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return ""
	}
	return string(b)
}

// projectContainers lists "name image state" of the project's containers on
// a node, straight from its engine.
func projectContainers(t *testing.T, c *testcluster.Cluster, node, project string) []string {
	t.Helper()
	cli := c.Docker(t, node)
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "berth.project="+project))})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list {
		out = append(out, strings.TrimPrefix(s.Names[0], "/")+" "+s.Image+" "+s.State)
	}
	return out
}

// events reads `apply -json` output: the plan line, events, the result.
type jsonApply struct {
	Plan   map[string]any
	Events []map[string]any
	Result map[string]any
}

func parseJSONApply(t *testing.T, out string) jsonApply {
	t.Helper()
	var ja jsonApply
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("apply -json printed a line that is not JSON: %q", line)
		}
		switch m["type"] {
		case "plan":
			ja.Plan = m["plan"].(map[string]any)
		case "result":
			ja.Result = m
		default:
			ja.Events = append(ja.Events, m)
		}
	}
	return ja
}

// poller fetches every node's published port until stopped, and records the
// fewest replicas seen answering at once.
type poller struct {
	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	minUp   int
	rounds  int
	answers map[string]bool
}

func startPoller(c *testcluster.Cluster, port int) *poller {
	p := &poller{stop: make(chan struct{}), minUp: 1 << 30, answers: map[string]bool{}}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			up := 0
			var wg sync.WaitGroup
			var mu sync.Mutex
			for _, n := range c.Nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if body := get(n.Addr, port, "/"); body != "" {
						mu.Lock()
						up++
						p.answers[strings.Fields(body)[1]] = true
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			p.mu.Lock()
			p.rounds++
			if up < p.minUp {
				p.minUp = up
			}
			p.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return p
}

func (p *poller) finish() (minUp, rounds int, versions map[string]bool) {
	close(p.stop)
	p.done.Wait()
	return p.minUp, p.rounds, p.answers
}

func execCommand(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	return cmd
}

func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	return sc
}

func volumeListOptions(name string) volume.ListOptions {
	return volume.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))}
}

func volumeExists(t *testing.T, c *testcluster.Cluster, node, name string) bool {
	t.Helper()
	_, err := c.Docker(t, node).VolumeInspect(context.Background(), name)
	return err == nil
}
