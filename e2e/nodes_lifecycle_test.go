package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/testcluster"
)

// The life of a node: a node block removed from the configuration (the
// project's containers there are moved or removed, nothing else), and a
// lost node whose replicas are rescheduled on request and whose duplicates
// are removed once it is back.

// nd16Project is a project name of these tests: nd16-WHAT-<6 hex digits>.
func nd16Project(t *testing.T, what string) string {
	name := testcluster.ProjectName(t)
	return "nd16-" + what + "-" + name[len(name)-6:]
}

// lifecycleHCL is service "web" (three replicas, at most two per node,
// health-gated, no published port) and, when job is set, service "job" on
// node3 only (role "db") with the named volume VOLUME.
func lifecycleHCL(job bool, volume string) string {
	s := `
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
    monitor     = "500ms"
  }
}
`
	if job {
		s += fmt.Sprintf(`
service "job" {
  image             = "berth-test/echo:v1"
  replicas          = 1
  stop_grace_period = "1s"

  placement {
    constraint = node.labels.role == "db"
  }

  volume {
    source = %q
    target = "/data"
  }
}
`, volume)
	}
	return s
}

// nodesWithout is the cluster's nodes.hcl without the named node's block.
func nodesWithout(t *testing.T, c *testcluster.Cluster, node string) string {
	t.Helper()
	nodes := c.NodesHCL()
	i := strings.Index(nodes, `node "`+node+`" {`)
	if i < 0 {
		t.Fatalf("no %s block in nodes.hcl:\n%s", node, nodes)
	}
	j := strings.Index(nodes[i:], "\n}\n")
	if j < 0 {
		t.Fatalf("the %s block does not end:\n%s", node, nodes)
	}
	return nodes[:i] + nodes[i+j+3:]
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// foreignContainer starts a container on node that berth must never touch
// (labels nil: unlabelled), removed when the test ends.
func foreignContainer(t *testing.T, c *testcluster.Cluster, node, name string, labels map[string]string) string {
	t.Helper()
	cli := c.Docker(t, node)
	ctx := context.Background()
	created, err := cli.ContainerCreate(ctx, &container.Config{Image: "berth-test/echo:v1", Labels: labels}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Docker(t, node).ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return created.ID
}

func running(t *testing.T, c *testcluster.Cluster, project string, nodes ...string) int {
	t.Helper()
	n := 0
	for _, node := range nodes {
		for _, ct := range containersOf(t, c, node, project) {
			if ct.State == "running" {
				n++
			}
		}
	}
	return n
}

// A node block removed after an apply with all three nodes: plan names
// node3 and the project's containers there; apply moves web's replica to
// node1 and node2 and removes job's container, and leaves node3's foreign
// containers (unlabelled, and of another project) and job's volume alone;
// the node set recorded by that apply no longer holds node3, so the next
// plan is empty.
func TestNodesLifecycleRemovedNode(t *testing.T) {
	c := testcluster.Require(t)
	project := nd16Project(t, "removed")
	volume := project + "-data"
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": lifecycleHCL(true, volume)})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	if cs := containersOf(t, c, "node3", project); len(cs) != 2 {
		t.Fatalf("node3 after the first apply: want web's and job's containers, got %v", cs)
	}
	unlabelled := foreignContainer(t, c, "node3", project+"-foreign", nil)
	other := foreignContainer(t, c, "node3", project+"-other", map[string]string{"berth.project": project + "-other", "berth.service": "web"})

	writeFile(t, dir, "nodes.hcl", nodesWithout(t, c, "node3"))
	writeFile(t, dir, "main.hcl", lifecycleHCL(false, ""))
	r := mustBerth(t, nil, "plan", dir)
	for _, want := range []string{
		"node node3 was removed from the configuration and still runs 2 containers of project",
		project + "-web-", project + "-job-1",
		"moved from node3 to", "the node was removed from the configuration",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the plan does not say %q:\n%s", want, r.out)
		}
	}
	r = mustBerth(t, nil, "apply", "-auto-approve", dir)
	if cs := containersOf(t, c, "node3", project); len(cs) != 0 {
		t.Errorf("node3 still holds the project's containers after the apply: %v\n%s", cs, r)
	}
	if n := running(t, c, project, "node1", "node2"); n != 3 {
		t.Errorf("%d replicas running on node1 and node2, want 3", n)
	}
	for _, id := range []string{unlabelled, other} {
		ct, err := c.Docker(t, "node3").ContainerInspect(context.Background(), id)
		if err != nil || !ct.State.Running {
			t.Errorf("a foreign container on node3 was touched: %v %+v", err, ct.State)
		}
	}
	if !volumeExists(t, c, "node3", volume) {
		t.Errorf("job's volume %s on node3 was removed", volume)
	}
	mustBerth(t, nil, "plan", "-detailed-exitcode", dir)
}

// destroy also covers a node whose block was removed.
func TestNodesLifecycleDestroyRemovedNode(t *testing.T) {
	c := testcluster.Require(t)
	project := nd16Project(t, "destroy")
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": lifecycleHCL(false, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	if cs := containersOf(t, c, "node3", project); len(cs) != 1 {
		t.Fatalf("node3 after the apply: %v", cs)
	}
	writeFile(t, dir, "nodes.hcl", nodesWithout(t, c, "node3"))
	r := mustBerth(t, nil, "destroy", "-auto-approve", dir)
	for _, n := range []string{"node1", "node2", "node3"} {
		if cs := containersOf(t, c, n, project); len(cs) != 0 {
			t.Errorf("%s still holds the project's containers after destroy: %v\n%s", n, cs, r)
		}
	}
}

// A lost node: with node2 blackholed a plan leaves its replica alone (and
// apply refuses); apply -reschedule-unreachable runs it on node1 or node3,
// except job's replica, which has a named volume. Once node2 is back, the
// next apply removes the duplicate there and keeps job's replica.
func TestNodesLifecycleLostNode(t *testing.T) {
	c := testcluster.Require(t)
	c.Exclusive(t)
	project := nd16Project(t, "lost")
	volume := project + "-data"
	// job runs on node2 (zone b) with its volume.
	main := strings.Replace(lifecycleHCL(true, volume), `node.labels.role == "db"`, `node.labels.zone == "b"`, 1)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": main})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	if cs := containersOf(t, c, "node2", project); len(cs) != 2 {
		t.Fatalf("node2 after the first apply: want web's and job's containers, got %v", cs)
	}

	c.Blackhole(t, "node2")
	r := berthT(t, 3*time.Minute, nil, "plan", dir)
	if r.code != 0 || !strings.Contains(r.out, "may run on node2, which is unreachable: left alone, not created elsewhere") {
		t.Fatalf("plan with node2 lost:\n%s", r)
	}
	r = berthT(t, 3*time.Minute, nil, "apply", "-auto-approve", "-reschedule-unreachable", dir)
	if r.code != 0 {
		t.Fatalf("apply -reschedule-unreachable:\n%s", r)
	}
	for _, want := range []string{"rescheduled (-reschedule-unreachable)", "not rescheduled off node2", "named volume " + volume} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the apply's plan does not say %q:\n%s", want, r.out)
		}
	}
	if n := running(t, c, project, "node1", "node3"); n != 3 {
		t.Errorf("%d of web's replicas run on node1 and node3, want 3", n)
	}

	c.Unblackhole(t, "node2")
	r = berthT(t, 3*time.Minute, nil, "plan", dir)
	if r.code != 0 || !strings.Contains(r.out, "which was rescheduled to") {
		t.Fatalf("plan once node2 is back:\n%s", r)
	}
	r = berthT(t, 3*time.Minute, nil, "apply", "-auto-approve", dir)
	if r.code != 0 {
		t.Fatalf("apply once node2 is back:\n%s", r)
	}
	cs := containersOf(t, c, "node2", project)
	if len(cs) != 1 || !strings.Contains(cs[0].Name, "-job-1") || cs[0].State != "running" {
		t.Errorf("node2 after the duplicates were removed: want job's replica only, got %v", cs)
	}
	if n := running(t, c, project, "node1", "node3"); n != 3 {
		t.Errorf("%d of web's replicas run on node1 and node3, want 3", n)
	}
	mustBerth(t, nil, "plan", "-detailed-exitcode", dir)
}

// A node block removed when nothing of the project runs there (say, after a
// drain): the plan is empty, and the apply still records the node set
// without it, so later runs no longer contact it.
func TestNodesLifecycleRemovedEmptyNode(t *testing.T) {
	c := testcluster.Require(t)
	project := nd16Project(t, "empty")
	main := strings.Replace(lifecycleHCL(false, ""), "max_per_node = 2", `max_per_node = 2
    constraint   = node.labels.role == "web"`, 1)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": main})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	if cs := containersOf(t, c, "node3", project); len(cs) != 0 {
		t.Fatalf("node3 runs the project's containers: %v", cs)
	}
	writeFile(t, dir, "nodes.hcl", nodesWithout(t, c, "node3"))
	r := mustBerth(t, nil, "status", dir)
	if !strings.Contains(r.out, "Nodes removed from the configuration") || !strings.Contains(r.out, "node3: 0 container(s)") {
		t.Fatalf("status before the apply does not list node3 as removed:\n%s", r.out)
	}
	r = mustBerth(t, nil, "apply", "-auto-approve", dir)
	if !strings.Contains(r.out, "No changes") {
		t.Errorf("apply with node3's block removed:\n%s", r.out)
	}
	r = mustBerth(t, nil, "status", dir)
	if strings.Contains(r.out, "node3") {
		t.Errorf("node3 is still recorded after the apply:\n%s", r.out)
	}
}
