package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testcluster"
)

// The ingress e2e tests: the routing mesh (every ingress node answers on an
// ingress port and balances over every replica), zero-downtime rolling
// updates through it, and routes after berth is killed mid-update. Ports:
// 18080 and 18600-18699.

const ingressImage = "berth-test/caddy:2.11.9"

// ingressHCL is the project with an ingress block (proxies on every node)
// and service "web": replicas of image behind ingress port `port`, health
// over HTTP, rolled out one replica at a time. constraint, when set, is the
// placement constraint.
func ingressHCL(project, image string, replicas, port int, constraint string) string {
	placement := ""
	if constraint != "" {
		placement = fmt.Sprintf("\n  placement {\n    constraint = %s\n  }\n", constraint)
	}
	return fmt.Sprintf(`
project %q {
  ingress {
    image = %q
    nodes = true
  }
}

service "web" {
  image             = %q
  replicas          = %d
  stop_grace_period = "3s"

  port {
    target    = 8080
    published = %d
    mode      = "ingress"
  }
%s
  # The start period covers a slow container start on a loaded machine:
  # failures in it do not count, the first success ends it.
  health {
    http         = "/healthz"
    interval     = "200ms"
    start_period = "10s"
  }

  update {
    parallelism = 1
    monitor     = "1s"
  }
}
`, project, ingressImage, image, replicas, port, placement)
}

// answer is one request through an ingress port: the body's replica, or
// an error.
func ingressGet(cl *http.Client, addr string, port int) (string, error) {
	resp, err := cl.Get(fmt.Sprintf("http://%s:%d/", addr, port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// replicasAnswering sends n requests to each node's ingress port and
// returns, per node, the distinct answers ("echo v1 on HOST").
func replicasAnswering(t *testing.T, c *testcluster.Cluster, port, n int) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	cl := &http.Client{Timeout: 5 * time.Second}
	for _, nd := range c.Nodes {
		out[nd.Name] = map[string]int{}
		for i := 0; i < n; i++ {
			body, err := ingressGet(cl, nd.Addr, port)
			if err != nil {
				t.Fatalf("request %d to %s:%d: %v", i+1, nd.Name, port, err)
			}
			out[nd.Name][body]++
		}
	}
	return out
}

// loadGen sends requests to every node's ingress port at a steady rate
// (rate per node per second, at most 8 in flight per node) until stopped,
// and counts them. Bounded: it stops itself after max.
type loadGen struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	start time.Time
	end   time.Time

	mu     sync.Mutex
	ok     map[string]int
	failed map[string]int
	errs   []string
}

func startLoad(c *testcluster.Cluster, port, rate int, max time.Duration) *loadGen {
	g := &loadGen{stop: make(chan struct{}), start: time.Now(), ok: map[string]int{}, failed: map[string]int{}}
	// Keep-alive connections, as browsers and HTTP libraries use them.
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	deadline := time.After(max)
	stop := make(chan struct{})
	go func() {
		select {
		case <-g.stop:
		case <-deadline:
		}
		close(stop)
	}()
	for _, nd := range c.Nodes {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			sem := make(chan struct{}, 8)
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			var inflight sync.WaitGroup
			defer inflight.Wait()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				select {
				case sem <- struct{}{}:
				default:
					continue // 8 in flight already: this tick is skipped (the rate check catches it)
				}
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					defer func() { <-sem }()
					_, err := ingressGet(cl, nd.Addr, port)
					g.mu.Lock()
					defer g.mu.Unlock()
					if err != nil {
						g.failed[nd.Name]++
						if len(g.errs) < 10 {
							g.errs = append(g.errs, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), nd.Name, err))
						}
						return
					}
					g.ok[nd.Name]++
				}()
			}
		}()
	}
	return g
}

// finish stops the load and checks it: at least minRate requests a second
// to every node over the whole run, none failed. It logs the counts.
func (g *loadGen) finish(t *testing.T, what string, minRate float64) {
	t.Helper()
	close(g.stop)
	g.wg.Wait()
	secs := time.Since(g.start).Seconds()
	g.mu.Lock()
	defer g.mu.Unlock()
	total, failed := 0, 0
	var parts []string
	for _, n := range slices.Sorted(mapsKeys(g.ok, g.failed)) {
		total += g.ok[n] + g.failed[n]
		failed += g.failed[n]
		rate := float64(g.ok[n]+g.failed[n]) / secs
		parts = append(parts, fmt.Sprintf("%s %d ok %d failed (%.1f/s)", n, g.ok[n], g.failed[n], rate))
		if rate < minRate {
			t.Errorf("%s: only %.1f requests/s to %s, want at least %.0f", what, rate, n, minRate)
		}
	}
	t.Logf("%s: %d requests in %.1fs, %d failed: %s", what, total, secs, failed, strings.Join(parts, "; "))
	// Not one request may fail: no 502 from a proxy routing to a replica
	// that is not serving, no refused, reset or timed-out connection. The
	// router reloads at every route change; the edge, which holds the
	// listening sockets and the clients' connections, does not.
	if failed > 0 {
		t.Errorf("%s: %d of %d requests failed; first: %s", what, failed, total, strings.Join(g.errs, " | "))
	}
}

func mapsKeys(ms ...map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}

// assertRoutesMatch reads the routes every proxy serves (berth plan -json
// shows each ingress node's live table) and compares them with the
// backends of the running web replicas, read from the engines.
func assertRoutesMatch(t *testing.T, c *testcluster.Cluster, dir, project string) {
	t.Helper()
	var want []string
	for _, nd := range c.Nodes {
		cli := c.Docker(t, nd.Name)
		for _, ct := range containersOf(t, c, nd.Name, project) {
			if ct.Labels["berth.service"] != "web" || ct.State != "running" {
				continue
			}
			in, err := cli.ContainerInspect(context.Background(), ct.ID)
			if err != nil {
				t.Fatal(err)
			}
			for p, bs := range in.NetworkSettings.Ports {
				if p.Int() != 8080 {
					continue
				}
				for _, b := range bs {
					want = append(want, b.HostIP+":"+b.HostPort)
				}
			}
		}
	}
	sort.Strings(want)
	r := mustBerth(t, nil, "plan", "-json", dir)
	var plan struct {
		Ingress *struct {
			Nodes []struct {
				Node   string `json:"node"`
				Loaded bool   `json:"loaded"`
				Live   []struct {
					Service   string   `json:"service"`
					Upstreams []string `json:"upstreams"`
				} `json:"live"`
			} `json:"nodes"`
		} `json:"ingress"`
	}
	if err := json.Unmarshal([]byte(r.out), &plan); err != nil {
		t.Fatalf("plan -json: %v\n%s", err, r.out)
	}
	if plan.Ingress == nil || len(plan.Ingress.Nodes) != len(c.Nodes) {
		t.Fatalf("plan -json shows no ingress on every node:\n%s", r.out)
	}
	for _, n := range plan.Ingress.Nodes {
		var got []string
		for _, rt := range n.Live {
			if rt.Service == "web" {
				got = append(got, rt.Upstreams...)
			}
		}
		sort.Strings(got)
		if !n.Loaded || !slices.Equal(got, want) {
			t.Errorf("ingress on %s routes web to %v (loaded %v), the running replicas are %v", n.Node, got, n.Loaded, want)
		}
	}
}

// The routing mesh: web, 6 replicas (2 per node), ingress port 18080. Every
// node answers and over 300 requests each node reaches all 6 replicas; a
// rolling update v1 -> v2 and a failing v3 (rolled back), each under steady
// load through every node, fail no request; destroy removes the proxies.
func TestIngressMesh(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	const port = 18080
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": ingressHCL(project, testcluster.ImageV1, 6, port, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	for _, nd := range c.Nodes {
		var web, proxies int
		for _, ct := range containersOf(t, c, nd.Name, project) {
			switch ct.Labels["berth.service"] {
			case "web":
				web++
			case "berth-ingress":
				proxies++
			}
		}
		if web != 2 || proxies != 1 {
			t.Fatalf("%s runs %d web replicas and %d proxies, want 2 and 1", nd.Name, web, proxies)
		}
	}
	seen := replicasAnswering(t, c, port, 300)
	for n, answers := range seen {
		t.Logf("%s: %d replicas answered: %v", n, len(answers), answers)
		if len(answers) != 6 {
			t.Errorf("%s: %d distinct replicas answered over 300 requests, want 6: %v", n, len(answers), answers)
		}
	}
	assertRoutesMatch(t, c, dir, project)
	if r := mustBerth(t, nil, "plan", "-detailed-exitcode", dir); !strings.Contains(r.out, "No changes") {
		t.Fatalf("plan after apply:\n%s", r.out)
	}

	// v1 -> v2 under load.
	writeMain(t, dir, ingressHCL(project, testcluster.ImageV2, 6, port, ""))
	g := startLoad(c, port, 25, 5*time.Minute)
	r := berthT(t, 4*time.Minute, nil, "apply", "-auto-approve", dir)
	g.finish(t, "update v1 -> v2", 20)
	if r.code != 0 {
		t.Fatalf("update to v2:\n%s", r)
	}
	for n, answers := range replicasAnswering(t, c, port, 60) {
		for body := range answers {
			if !strings.HasPrefix(body, "echo v2 ") {
				t.Errorf("%s answered %q after the update to v2", n, body)
			}
		}
	}
	assertRoutesMatch(t, c, dir, project)

	// v3 (broken: never healthy) under load: rolled back, nothing fails.
	writeMain(t, dir, ingressHCL(project, testcluster.ImageBroken, 6, port, ""))
	g = startLoad(c, port, 25, 5*time.Minute)
	r = berthT(t, 4*time.Minute, nil, "apply", "-auto-approve", dir)
	g.finish(t, "failing update v2 -> v3 (rolled back)", 20)
	if r.code == 0 || !strings.Contains(r.out+r.err, "Rolled back") {
		t.Fatalf("the broken update was not rolled back:\n%s", r)
	}
	for n, answers := range replicasAnswering(t, c, port, 60) {
		if len(answers) != 6 {
			t.Errorf("%s: %d replicas answer after the rollback, want 6: %v", n, len(answers), answers)
		}
		for body := range answers {
			if !strings.HasPrefix(body, "echo v2 ") {
				t.Errorf("%s answered %q after the rollback", n, body)
			}
		}
	}
	assertRoutesMatch(t, c, dir, project)

	mustBerth(t, nil, "destroy", "-auto-approve", dir)
	for _, nd := range c.Nodes {
		if cs := containersOf(t, c, nd.Name, project); len(cs) != 0 {
			t.Errorf("%s after destroy: %v", nd.Name, cs)
		}
		if body := get(nd.Addr, port, "/"); body != "" {
			t.Errorf("%s still answers on %d after destroy: %q", nd.Name, port, body)
		}
	}
}

// A node that runs no replica answers on the ingress port too: web's 4
// replicas are placed on node1 and node2 only, and node3 (an ingress node)
// reaches all 4.
func TestIngressNodeWithoutReplica(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	const port = 18600
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": ingressHCL(project, testcluster.ImageV1, 4, port, `node.labels.role == "web"`)})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	for _, ct := range containersOf(t, c, "node3", project) {
		if ct.Labels["berth.service"] == "web" {
			t.Fatalf("node3 runs a web replica: %v", ct)
		}
	}
	for n, answers := range replicasAnswering(t, c, port, 100) {
		if len(answers) != 4 {
			t.Errorf("%s: %d distinct replicas answered, want 4: %v", n, len(answers), answers)
		}
	}
}

// berth killed (SIGKILL) at each step boundary of an ingress update, then
// apply again: every proxy routes to exactly the running replicas.
func TestIngressKilledAtBoundaries(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	const port = 18601
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": ingressHCL(project, testcluster.ImageV1, 3, port, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	var version string
	for _, point := range []string{"locked", "preflight", "renamed", "created", "started", "healthy", "routed", "unrouted", "stopped", "action", "batch", "routed#2", "commit-marked", "committed"} {
		t.Run(strings.ReplaceAll(point, "#", "-"), func(t *testing.T) {
			// The other version than the one running now.
			version = testcluster.ImageV2
			for _, ct := range containersOf(t, c, "node1", project) {
				if ct.Labels["berth.service"] == "web" && ct.Image == testcluster.ImageV2 {
					version = testcluster.ImageV1
				}
			}
			writeMain(t, dir, ingressHCL(project, version, 3, port, ""))
			r := berthT(t, 3*time.Minute, []string{"BERTH_TEST_KILL_AT=" + point}, "apply", "-auto-approve", dir)
			if r.code != -1 || !strings.Contains(r.err, "test hook: sending killed") {
				t.Fatalf("berth was not killed at %s:\n%s", point, r)
			}
			if r := berthT(t, 3*time.Minute, nil, "apply", "-auto-approve", dir); r.code != 0 {
				t.Fatalf("the apply after the kill at %s failed:\n%s", point, r)
			}
			assertRoutesMatch(t, c, dir, project)
			if after := mustBerth(t, nil, "plan", dir); !strings.Contains(after.out, "No changes") {
				t.Errorf("plan after the recovering apply:\n%s", after.out)
			}
			for n, answers := range replicasAnswering(t, c, port, 30) {
				if len(answers) != 3 {
					t.Errorf("%s: %d replicas answer, want 3: %v", n, len(answers), answers)
				}
			}
		})
	}
}
