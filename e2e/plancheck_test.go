package e2e

// Issue 19, items 1-3: what the plan could see must not wait for apply to
// fail, and a plan made without a node must not read as "no changes".

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

// A container outside berth (`docker run -d --name brk-web-1`, no berth
// labels) holds the name of project brk's service web replica 1 on node1:
// plan fails at once (exit 1) naming node1, brk-web-1 and the holder,
// instead of a plan that apply then fails on with Docker's name conflict.
func TestPlanForeignContainerHoldsName(t *testing.T) {
	c := testcluster.Require(t)
	const project, name = "brk", "brk-web-1"
	cli := c.Docker(t, "node1")
	ctx := context.Background()
	cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}) // left by an earlier run
	cr, err := cli.ContainerCreate(ctx, &container.Config{Image: testcluster.ImageV1}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), cr.ID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": fmt.Sprintf("project %q {}\n", project) + webHCL("web", testcluster.ImageV1, 18401, "")})
	for _, args := range [][]string{{"plan", dir}, {"apply", "-auto-approve", dir}} {
		r := berth(t, nil, args...)
		if r.code != 1 {
			t.Fatalf("berth %s: want exit 1:\n%s", args[0], r)
		}
		for _, w := range []string{"node node1", name, "not managed by berth", "ID " + cr.ID[:12], "image " + testcluster.ImageV1, "Rename or remove that container", "another project name"} {
			if !strings.Contains(r.err, w) {
				t.Errorf("berth %s: the error lacks %q:\n%s", args[0], w, r)
			}
		}
	}
	for _, n := range c.Nodes {
		if cs := containersOf(t, c, n.Name, project); len(cs) != 0 {
			t.Errorf("%s: the failed plan left containers: %v", n.Name, cs)
		}
	}
	if info, err := cli.ContainerInspect(ctx, cr.ID); err != nil || info.Name != "/"+name || !info.State.Running {
		t.Errorf("the foreign container was touched: %v %+v", err, info.State)
	}
}

// Two node blocks that reach node1's engine: plan fails naming both nodes
// and the shared engine ID, whether the two blocks have the same address
// (validate warns about that one) or one uses node1's IP and the other an
// ~/.ssh/config Host alias of it (no string comparison can see that).
func TestPlanTwoNodesOneEngine(t *testing.T) {
	c := testcluster.Require(t)
	n1 := c.Node(t, "node1")
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(fmt.Sprintf("Host web1\n  HostName %s\n", n1.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := c.Docker(t, "node1").Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	block := func(name, addr, zone string) string {
		return fmt.Sprintf("node %q {\n  address       = %q\n  user          = %q\n  identity_file = %q\n  known_hosts   = %q\n  labels = {\n    zone = %q\n    role = \"web\"\n  }\n}\n",
			name, addr, c.User, c.Key, c.KnownHosts, zone)
	}
	for _, tc := range []struct{ name, addr string }{{"same-address", n1.Addr}, {"ssh-config-alias", "web1"}} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := block("node1", n1.Addr, "a") + block("node1b", tc.addr, "b") + block("node3", c.Node(t, "node3").Addr, "c")
			dir := c.ConfigDir(t, map[string]string{"nodes.hcl": nodes, "main.hcl": webHCL("web", testcluster.ImageV1, 18402, "")})
			r := berth(t, []string{"HOME=" + home}, "plan", dir)
			if r.code != 1 || !strings.Contains(r.err, "Nodes node1 and node1b reach the same Docker engine") || !strings.Contains(r.err, id.ID) {
				t.Fatalf("want exit 1 naming node1, node1b and engine ID %s:\n%s", id.ID, r)
			}
			if strings.Contains(r.out, "web.") {
				t.Fatalf("a plan was printed:\n%s", r)
			}
		})
	}
}

// node2 does not answer and nothing runs yet; web has 3 replicas and a
// published port, so node2 can hold at most one: at least two are
// certainly missing. plan never says "No changes"; plan -detailed-exitcode
// exits 1 unless -allow-unreachable (then 2); apply refuses unless
// -allow-unreachable, and then creates two replicas, on node1 and node3.
// With node2 back, the next apply creates the third there.
func TestUnreachableNodePlan(t *testing.T) {
	c := testcluster.Require(t)
	c.Exclusive(t) // StopSSHD below: hold the cluster before any state
	const port = 18403
	dir := c.ConfigDir(t, map[string]string{"main.hcl": webHCL("web", testcluster.ImageV1, port, "")})
	project := filepath.Base(dir)
	c.StopSSHD(t, "node2")

	r := berthT(t, time.Minute, nil, "plan", dir)
	if r.code != 0 || strings.Contains(r.out, "No changes") || !strings.Contains(r.out, "Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy. Networks: 2 to create, 0 to remove. Node node2 is unreachable") ||
		!strings.Contains(r.out, "node2, which is unreachable, can hold at most 1 of its replicas") {
		t.Fatalf("plan with node2 down:\n%s", r)
	}
	r = berthT(t, time.Minute, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 1 || !strings.Contains(r.err, "node2") || !strings.Contains(r.err, "-allow-unreachable") {
		t.Fatalf("plan -detailed-exitcode with node2 down: want exit 1 naming node2:\n%s", r)
	}
	if r = berthT(t, time.Minute, nil, "plan", "-detailed-exitcode", "-allow-unreachable", dir); r.code != 2 {
		t.Fatalf("plan -detailed-exitcode -allow-unreachable: want exit 2:\n%s", r)
	}
	r = berthT(t, time.Minute, nil, "apply", "-auto-approve", dir)
	if r.code != 1 || !strings.Contains(r.err, "node node2") || !strings.Contains(r.err, "-allow-unreachable") {
		t.Fatalf("apply with node2 down: want exit 1 naming node2:\n%s", r)
	}
	for _, n := range c.Nodes {
		if cs := containersOf(t, c, n.Name, project); len(cs) != 0 {
			t.Fatalf("the refused apply changed %s: %v", n.Name, cs)
		}
	}
	r = berthT(t, 2*time.Minute, nil, "apply", "-auto-approve", "-allow-unreachable", dir)
	if r.code != 0 {
		t.Fatalf("apply -allow-unreachable:\n%s", r)
	}
	for n, want := range map[string]int{"node1": 1, "node2": 0, "node3": 1} {
		cs := containersOf(t, c, n, project)
		if len(cs) != want {
			t.Fatalf("%s holds %v, want %d replica", n, cs, want)
		}
		if want == 1 && (cs[0].State != "running" || !strings.HasPrefix(get(c.Node(t, n).Addr, port, "/"), "echo v1")) {
			t.Fatalf("%s: %v does not serve", n, cs)
		}
	}
	c.StartSSHD(t, "node2")
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	assertServing(t, c, port, "v1")
	r = mustBerth(t, nil, "plan", "-detailed-exitcode", dir)
	if !strings.Contains(r.out, "No changes.") {
		t.Fatalf("plan with every node back:\n%s", r)
	}
}
