package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/internal/testcluster"
	"github.com/berth-dev/berth/planner"
)

// swarmAcceptanceHCL is the acceptance-style configuration: web spread over
// the zones, db pinned by a node label with a named volume. It holds no
// project block: the same services run with Swarm as the target and with
// berth's own.
func swarmAcceptanceHCL(volume string, dbPort, webPort int) string {
	return fmt.Sprintf(`
service "db" {
  image = %q
  placement {
    constraint = node.labels.role == "db"
  }
  volume {
    source = %q
    target = "/data"
  }
  port {
    target    = 8080
    published = %d
  }
  health {
    cmd      = ["/echo", "check"]
    interval = "500ms"
  }
  update {
    monitor = "1s"
  }
}

service "web" {
  image      = %q
  replicas   = 3
  depends_on = ["db"]
  port {
    target    = 8080
    published = %d
  }
  placement {
    spread       = node.labels.zone
    max_per_node = 1
  }
  health {
    cmd      = ["/echo", "check"]
    interval = "500ms"
  }
  update {
    parallelism = 3
    monitor     = "1s"
  }
}
`, testcluster.ImageV1, volume, dbPort, testcluster.ImageV1, webPort)
}

// swarmTasks returns, per node host name, the running tasks of a Swarm
// service and the configured image (label berth.image) of its spec.
func swarmTasks(t *testing.T, c *testcluster.Cluster, service string) (map[string]int, string) {
	t.Helper()
	ctx := context.Background()
	mgr := c.Docker(t, "node1")
	svc, _, err := mgr.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect service %s: %v", service, err)
	}
	tasks, err := mgr.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _ := mgr.NodeList(ctx, swarm.NodeListOptions{})
	host := map[string]string{}
	for _, n := range nodes {
		host[n.ID] = n.Description.Hostname
	}
	out := map[string]int{}
	for _, tk := range tasks {
		if tk.Status.State == swarm.TaskStateRunning {
			out[host[tk.NodeID]]++
		}
	}
	return out, svc.Spec.Labels["berth.image"]
}

// TestSwarmAcceptance applies the acceptance-style configuration with
// Swarm as the target (plan text and JSON with the services and the node
// labels, every task where placement allows, no changes after), catches a
// service updated by hand between plan and update (no saved plan), recovers
// an apply killed with kill -9 mid-rollout, and runs the same services with
// berth's own target.
func TestSwarmAcceptance(t *testing.T) {
	c := testcluster.Require(t)
	const project, dbPort, webPort = "sw15-acc", 18960, 18961
	volume := project + "-data"
	dir := c.ConfigDirProject(t, project, map[string]string{
		"project.hcl": fmt.Sprintf("project %q {\n  swarm {\n    managers = [\"node1\"]\n  }\n}\n", project),
		"main.hcl":    swarmAcceptanceHCL(volume, dbPort, webPort),
	})
	swarmUp(t, c, project, volume)
	start := time.Now()
	ctx := context.Background()
	mgr := c.Docker(t, "node1")

	// The plan lists the services and the node labels, in text and JSON.
	r := berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 2 {
		t.Fatalf("first plan: want exit 2:\n%s", r)
	}
	for _, want := range []string{
		"+   service db (create)", "+   service web (create)",
		"berth." + project + ".db=true on node3",
		"berth." + project + ".web.spread=a on node1", "berth." + project + ".web.spread=b on node2", "berth." + project + ".web.spread=c on node3",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("first plan lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "berth."+project+".db=true on node1") || strings.Contains(r.out, "berth."+project+".db=true on node2") {
		t.Errorf("the plan makes a web node eligible for db:\n%s", r.out)
	}
	var p planner.Plan
	if err := json.Unmarshal([]byte(mustBerth(t, nil, "plan", "-json", dir).out), &p); err != nil {
		t.Fatalf("plan -json: %v", err)
	}
	if p.Swarm == nil || len(p.Swarm.Services) != 2 || len(p.Swarm.NodeLabels) != 4 {
		t.Fatalf("plan -json swarm part: %+v", p.Swarm)
	}
	if p.Swarm.Services[0].Service != "db" || p.Swarm.Services[1].Service != "web" {
		t.Errorf("plan -json services: %q, %q; want db, web (depends_on order)", p.Swarm.Services[0].Service, p.Swarm.Services[1].Service)
	}
	labels := map[string]string{}
	for _, l := range p.Swarm.NodeLabels {
		labels[l.Node+" "+l.Label] = l.Value
	}
	if labels["node3 berth."+project+".db"] != "true" || labels["node2 berth."+project+".web.spread"] != "b" {
		t.Errorf("plan -json node labels: %v", labels)
	}

	// Apply: every task runs where placement allows; then no changes.
	t0 := time.Now()
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	t.Logf("first apply: %s", time.Since(t0).Round(time.Millisecond))
	checkPlaced := func(when, image string) {
		t.Helper()
		if got, img := swarmTasks(t, c, project+"-web"); len(got) != 3 || got["node1"] != 1 || got["node2"] != 1 || got["node3"] != 1 || img != image {
			t.Errorf("%s: web runs %s, tasks per node %v; want %s, one on each node", when, img, got, image)
		}
		if got, img := swarmTasks(t, c, project+"-db"); len(got) != 1 || got["node3"] != 1 || img != image {
			t.Errorf("%s: db runs %s, tasks per node %v; want %s, one on node3 (role db)", when, img, got, image)
		}
	}
	checkPlaced("after the first apply", testcluster.ImageV1)
	if body := get(c.Nodes[2].Addr, dbPort, "/"); !strings.Contains(body, "echo v1") {
		t.Errorf("db on node3 answers %q", body)
	}
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 0 || !strings.Contains(r.out, "No changes") {
		t.Fatalf("plan after apply: want no changes:\n%s", r)
	}

	// No saved plan: web is updated by hand once the apply planned (under
	// the lock) and sent db's update. berth's update of web passes the
	// version it planned against: refused, web not overwritten, db rolled
	// back.
	setImage(t, dir, `"`+testcluster.ImageV1+`"`, `"`+testcluster.ImageV2+`"`)
	pause := filepath.Join(t.TempDir(), "pause")
	done := make(chan run, 1)
	go func() {
		done <- berth(t, []string{"BERTH_TEST_PAUSE_AT=swarm-updated#1", "BERTH_TEST_PAUSE_FILE=" + pause}, "apply", "-auto-approve", dir)
	}()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(pause); err == nil {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("apply ended before the pause:\n%s", r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("apply did not reach swarm-updated#1")
		}
	}
	web, _, err := mgr.ServiceInspectWithRaw(ctx, project+"-web", swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := web.Spec
	spec.Labels["changed-by"] = "hand"
	if _, err := mgr.ServiceUpdate(ctx, web.ID, web.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("docker service update by hand: %v", err)
	}
	os.Remove(pause)
	r = <-done
	t.Logf("apply over a hand update:\n%s", r)
	if r.code != 1 || !strings.Contains(r.out+r.err, `service "web" changed since the plan was made`) || !strings.Contains(r.out+r.err, "not overwritten") {
		t.Errorf("hand update between plan and apply: want exit 1 naming web, not overwritten:\n%s", r)
	}
	after, _, err := mgr.ServiceInspectWithRaw(ctx, project+"-web", swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Spec.Labels["changed-by"] != "hand" || after.Spec.Labels["berth.image"] != testcluster.ImageV1 {
		t.Errorf("web was overwritten: labels %v", after.Spec.Labels)
	}
	if _, img := swarmTasks(t, c, project+"-db"); img != testcluster.ImageV1 {
		t.Errorf("db runs %s after the refused apply, want it rolled back to %s", img, testcluster.ImageV1)
	}

	// kill -9 once web's update (v1 -> v2) was sent, db's done: the next
	// apply takes the lock over, waits for Swarm's rollout, rolls the
	// interrupted apply back (web and db), then applies v2.
	t0 = time.Now()
	r = berth(t, []string{"BERTH_TEST_KILL_AT=swarm-updated#2"}, "apply", "-auto-approve", dir)
	t.Logf("killed apply %s:\n%s", time.Since(t0).Round(time.Millisecond), r)
	if r.code != -1 {
		t.Fatalf("the apply was not killed at swarm-updated#2:\n%s", r)
	}
	t0 = time.Now()
	r = mustBerth(t, nil, "apply", "-auto-approve", dir)
	t.Logf("recovering apply %s:\n%s", time.Since(t0).Round(time.Millisecond), r)
	if !strings.Contains(r.out, "recovery of the interrupted apply") || strings.Count(r.out, "rolled back") < 2 {
		t.Errorf("the next apply does not say it rolled back the interrupted apply's two services:\n%s", r)
	}
	checkPlaced("after the recovering apply", testcluster.ImageV2)
	for _, n := range c.Nodes {
		if body := get(n.Addr, webPort, "/"); !strings.Contains(body, "echo v2") {
			t.Errorf("after recovery, web on %s answers %q, want echo v2", n.Name, body)
		}
	}
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 0 {
		t.Errorf("plan after the recovering apply: want no changes:\n%s", r)
	}
	if volumeExists(t, c, "node1", "berth-lock-"+project) {
		t.Errorf("the lock is left on node1 after the recovering apply")
	}
	mustBerth(t, nil, "destroy", "-auto-approve", dir)
	// destroy returns once Swarm has no task left; the nodes remove the
	// tasks' containers (which hold the ports) a moment later.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		left := 0
		for _, n := range c.Nodes {
			left += len(projectContainers(t, c, n.Name, project))
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d containers of the swarm project left 2 minutes after destroy", left)
		}
	}
	t.Logf("swarm target: %s", time.Since(start).Round(time.Millisecond))

	// The same services with berth's own target (no swarm block).
	t0 = time.Now()
	own := project + "-own"
	b, err := os.ReadFile(filepath.Join(dir, "main.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	dir2 := c.ConfigDirProject(t, own, map[string]string{
		"project.hcl": fmt.Sprintf("project %q {}\n", own),
		"main.hcl":    string(b),
	})
	mustBerth(t, nil, "apply", "-auto-approve", dir2)
	for _, n := range c.Nodes {
		if body := get(n.Addr, webPort, "/"); !strings.Contains(body, "echo v2") {
			t.Errorf("berth's own target: web on %s answers %q, want echo v2", n.Name, body)
		}
		want := n.Name == "node3"
		if body := get(n.Addr, dbPort, "/"); strings.Contains(body, "echo v2") != want {
			t.Errorf("berth's own target: db on %s answers %q (want it on node3 only)", n.Name, body)
		}
	}
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir2); r.code != 0 {
		t.Errorf("berth's own target: plan after apply: want no changes:\n%s", r)
	}
	mustBerth(t, nil, "destroy", "-auto-approve", "-volumes", dir2)
	t.Logf("berth's own target: %s; the whole test after the swarm was formed: %s", time.Since(t0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
