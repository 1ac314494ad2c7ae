package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/internal/testcluster"
	"github.com/berth-dev/berth/planner"
)

// swarmUp forms a swarm of the test cluster with scripts/testcluster swarm
// up (node1 manager, node2 and node3 workers, labels zone and role): it
// takes the cluster for the test alone, and always takes the swarm apart
// again (swarm down: every node leaves, no service, swarm network or task
// container is left), then removes what the swarm's tasks left of project
// (the named volumes Swarm created without berth's labels, the project's
// networks), so other tests find the nodes as they were.
func swarmUp(t *testing.T, c *testcluster.Cluster, project string, volumes ...string) {
	t.Helper()
	// Registered before swarm up, so it runs after swarm down (which
	// removes every service first).
	t.Cleanup(func() {
		ctx := context.Background()
		for _, n := range c.Nodes {
			cli := c.Docker(t, n.Name)
			for _, v := range volumes {
				for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
					err := cli.VolumeRemove(ctx, v, true)
					if err == nil || client.IsErrNotFound(err) || time.Now().After(deadline) {
						break
					}
				}
			}
			nets, _ := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "berth.project="+project))})
			for _, nw := range nets {
				_ = cli.NetworkRemove(ctx, nw.ID)
			}
		}
	})
	start := time.Now()
	c.SwarmUp(t)
	t.Logf("swarm formed in %s (with the wait for the cluster)", time.Since(start).Round(time.Millisecond))
}

// TestSwarmPlanApply drives a three-node swarm with berth: plan, apply
// (converged, the host-mode port answers), no perpetual diff, an image
// change with its field diff, and a saved plan refused after a concurrent
// docker service update.
func TestSwarmPlanApply(t *testing.T) {
	c := testcluster.Require(t)
	start := time.Now()
	project := testcluster.ProjectName(t)
	const port = 18950
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": fmt.Sprintf(`
project %q {
  swarm {
    managers = ["node2", "node1"]
  }
}

service "echo" {
  image    = %q
  replicas = 3
  port {
    target    = 8080
    published = %d
  }
  placement {
    spread = node.labels.zone
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

service "api" {
  image      = %q
  depends_on = ["echo"]
  env = {
    PORT = "9090"
  }
  sensitive_env = {
    TOKEN = "s3cr3t-swarm-token"
  }
  placement {
    constraint = node.labels.role == "db"
  }
  resources {
    cpus   = 0.1
    memory = "64MiB"
  }
  volume {
    source = "%s-data"
    target = "/data"
  }
  health {
    cmd      = ["/echo", "check", "http://127.0.0.1:9090/healthz"]
    interval = "500ms"
  }
  update {
    monitor = "1s"
  }
}
`, project, testcluster.ImageV1, port, testcluster.ImageV1, project)})
	// After ConfigDirProject, so that its cleanup (which removes the
	// project's containers) runs after the swarm is gone.
	swarmUp(t, c, project, project+"-data")
	start = time.Now()
	mgr := c.Docker(t, "node1")
	ctx := context.Background()

	// Plan: both services to create, the node labels, dnsrr.
	r := berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 2 {
		t.Fatalf("first plan: want exit 2:\n%s", r)
	}
	for _, want := range []string{
		"+   service echo (create)", "+   service api (create)",
		"berth." + project + ".api=true on node3",
		"berth." + project + ".echo.spread=a on node1",
		"endpoint mode dnsrr",
		"swarm manager node2: the engine is a swarm worker, not a manager",
		"pinned by its image ID",
		"stored in clear text",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("first plan lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out+r.err, "s3cr3t-swarm-token") {
		t.Errorf("the plan shows the sensitive value:\n%s", r)
	}
	js := mustBerth(t, nil, "plan", "-json", dir)
	if strings.Contains(js.out, "s3cr3t-swarm-token") {
		t.Errorf("the JSON plan holds the sensitive value")
	}
	var p planner.Plan
	if err := json.Unmarshal([]byte(js.out), &p); err != nil {
		t.Fatalf("plan -json: %v\n%s", err, js.out)
	}
	if p.Swarm == nil || len(p.Swarm.Services) != 2 || p.Swarm.Services[0].Service != "echo" || len(p.Swarm.NodeLabels) != 4 {
		t.Errorf("plan -json swarm part: %+v", p.Swarm)
	}

	// Apply: converged, three tasks running, the port answers on every node.
	t0 := time.Now()
	r = mustBerth(t, nil, "apply", "-auto-approve", dir)
	t.Logf("first apply %s:\n%s", time.Since(t0).Round(time.Millisecond), r.out)
	if !strings.Contains(r.out, "converged") {
		t.Errorf("apply shows no convergence:\n%s", r.out)
	}
	running := func(service string) map[string]int {
		got, _ := swarmTasks(t, c, project+"-"+service)
		return got
	}
	if got := running("echo"); len(got) != 3 {
		t.Errorf("echo tasks running per node = %v, want one on each of 3 nodes", got)
	}
	if got := running("api"); got["node3"] != 1 || len(got) != 1 {
		t.Errorf("api tasks running per node = %v, want one on node3 (role db)", got)
	}
	for _, n := range c.Nodes {
		if body := get(n.Addr, port, "/"); !strings.Contains(body, "echo v1") {
			t.Errorf("port %d on %s answers %q, want echo v1", port, n.Name, body)
		}
	}

	// status: services like docker service ls, tasks like docker service ps.
	st := mustBerth(t, nil, "status", dir)
	t.Logf("status:\n%s", st.out)
	if !regexp.MustCompile(`(?m)^echo\s+3/3\s+`+regexp.QuoteMeta(testcluster.ImageV1)).MatchString(st.out) ||
		!regexp.MustCompile(`(?m)^api\.1\s+node3\s+running`).MatchString(st.out) {
		t.Errorf("status does not show echo 3/3 and api.1 running on node3:\n%s", st.out)
	}

	// No perpetual diff.
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 0 || !strings.Contains(r.out, "No changes") {
		t.Fatalf("second plan: want no changes, exit 0:\n%s", r)
	}

	// An image change: the field diff, then a rolling update.
	setImage(t, dir, `image    = "`+testcluster.ImageV1+`"`, `image    = "`+testcluster.ImageV2+`"`)
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 2 || !strings.Contains(r.out, "~   service echo (update)") ||
		!strings.Contains(r.out, "~ image: "+testcluster.ImageV1+" (image ") || !strings.Contains(r.out, "-> "+testcluster.ImageV2+" (image ") ||
		strings.Contains(r.out, "service api (") {
		t.Errorf("image change plan:\n%s", r)
	}
	t0 = time.Now()
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	t.Logf("image update applied in %s", time.Since(t0).Round(time.Millisecond))
	for _, n := range c.Nodes {
		if body := get(n.Addr, port, "/"); !strings.Contains(body, "echo v2") {
			t.Errorf("after the update, port %d on %s answers %q, want echo v2", port, n.Name, body)
		}
	}
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 0 {
		t.Errorf("plan after the update: want no changes:\n%s", r)
	}

	// Ctrl-C once api's update (v1 -> v2) was sent: Swarm's rollback
	// brings v1 back, berth exits 130; echo is not touched.
	setImage(t, dir, `image      = "`+testcluster.ImageV1+`"`, `image      = "`+testcluster.ImageV2+`"`)
	t0 = time.Now()
	r = berth(t, []string{"BERTH_TEST_KILL_AT=swarm-updated#1", "BERTH_TEST_KILL_SIGNAL=INT"}, "apply", "-auto-approve", dir)
	t.Logf("interrupted apply %s:\n%s", time.Since(t0).Round(time.Millisecond), r)
	if r.code != 130 || strings.Contains(r.out, "service echo (") {
		t.Errorf("SIGINT: want exit 130, echo untouched:\n%s", r)
	}
	if s, _, err := mgr.ServiceInspectWithRaw(ctx, project+"-api", swarm.ServiceInspectOptions{}); err != nil || s.Spec.Labels["berth.image"] != testcluster.ImageV1 {
		t.Errorf("after SIGINT, api is not rolled back to v1 (%v)", err)
	}
	setImage(t, dir, `image      = "`+testcluster.ImageV2+`"`, `image      = "`+testcluster.ImageV1+`"`)

	// A saved plan, then a concurrent docker service update: refused.
	setImage(t, dir, `image    = "`+testcluster.ImageV2+`"`, `image    = "`+testcluster.ImageV1+`"`)
	planFile := filepath.Join(t.TempDir(), "swarm.plan")
	if r := berth(t, nil, "plan", "-out", planFile, dir); r.code != 0 {
		t.Fatalf("plan -out:\n%s", r)
	}
	svc, _, err := mgr.ServiceInspectWithRaw(ctx, project+"-echo", swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := svc.Spec
	spec.Labels["changed-by"] = "hand"
	if _, err := mgr.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("docker service update by hand: %v", err)
	}
	r = berth(t, nil, "apply", planFile)
	t.Logf("apply of the stale plan:\n%s", r.err)
	if r.code != 1 || !strings.Contains(r.out+r.err, "service "+project+"-echo version") {
		t.Errorf("stale saved plan: want exit 1 naming the service:\n%s", r)
	}
	after, _, err := mgr.ServiceInspectWithRaw(ctx, svc.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Swarm itself writes the service (its update status), so its version
	// may move on; what berth would have changed did not.
	if after.Spec.Labels["changed-by"] != "hand" || after.Spec.Labels["berth.image"] != testcluster.ImageV2 {
		t.Errorf("the refused plan changed the service: labels %v", after.Spec.Labels)
	}

	// One apply changes echo (back to v1, converges) and then api (to the
	// broken image, whose health check fails): Swarm rolls api back, berth
	// rolls echo back too, with Swarm's rollback, and says so.
	setImage(t, dir, `image      = "`+testcluster.ImageV1+`"`, `image      = "`+testcluster.ImageBroken+`"`)
	t0 = time.Now()
	r = berth(t, nil, "apply", "-auto-approve", dir)
	t.Logf("failing apply %s:\n%s", time.Since(t0).Round(time.Millisecond), r)
	if r.code != 1 || !strings.Contains(r.out+r.err, "Swarm rolled it back") || !strings.Contains(r.out+r.err, "every service this apply changed was rolled back") {
		t.Errorf("apply of the broken image: want exit 1, rolled back:\n%s", r)
	}
	for name, want := range map[string]string{"echo": testcluster.ImageV2, "api": testcluster.ImageV1} {
		s, _, err := mgr.ServiceInspectWithRaw(ctx, project+"-"+name, swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Spec.Labels["berth.image"]; got != want {
			t.Errorf("after the rollback, %s runs %s, want %s", name, got, want)
		}
	}
	for _, n := range c.Nodes {
		if body := get(n.Addr, port, "/"); !strings.Contains(body, "echo v2") {
			t.Errorf("after the rollback, port %d on %s answers %q, want echo v2", port, n.Name, body)
		}
	}

	// destroy removes the services, the network and berth's node labels.
	t0 = time.Now()
	r = mustBerth(t, nil, "destroy", "-auto-approve", dir)
	t.Logf("destroy %s:\n%s", time.Since(t0).Round(time.Millisecond), r.out)
	if svcs, _ := mgr.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "berth.project="+project))}); len(svcs) != 0 {
		t.Errorf("after destroy, %d services are left", len(svcs))
	}
	nodes, _ := mgr.NodeList(ctx, swarm.NodeListOptions{})
	for _, n := range nodes {
		for k := range n.Spec.Labels {
			if strings.HasPrefix(k, "berth."+project+".") {
				t.Errorf("after destroy, node %s keeps label %s", n.Description.Hostname, k)
			}
		}
	}
	if _, err := mgr.NetworkInspect(ctx, "berth-swarm-"+project, network.InspectOptions{}); err == nil {
		t.Errorf("after destroy, the network is left")
	}
	t.Logf("plans, 5 applies and destroy on the swarm: %s", time.Since(start).Round(time.Millisecond))
}
