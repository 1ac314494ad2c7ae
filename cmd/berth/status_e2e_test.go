package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/testcluster"
	"github.com/berth-dev/berth/planner"
)

// berth status against the three cluster nodes lists containers started
// there (by hand, with berth's labels) on the right nodes; with node2's sshd
// stopped, node2 is reported unreachable at once and node1 and node3 are
// still shown.
func TestE2EStatus(t *testing.T) {
	c := testcluster.Require(t)
	// StopSSHD below: hold the cluster before anything is set up, so that
	// the wait for it comes first and no other test's fault lands mid-test.
	c.Exclusive(t)
	dir := c.ConfigDir(t, map[string]string{"app.hcl": `
service "web" {
  image    = "berth-test/echo:v1"
  replicas = 3
}
`})
	project := dir[strings.LastIndex(dir, "/")+1:]
	ctx := context.Background()
	for i, node := range []string{"node1", "node2", "node3"} {
		d := c.Docker(t, node)
		name := planner.ContainerName(project, "web", i+1)
		resp, err := d.ContainerCreate(ctx, &container.Config{Image: testcluster.ImageV1, Labels: map[string]string{
			planner.LabelProject: project, planner.LabelService: "web", planner.LabelReplica: string(rune('1' + i)),
		}}, nil, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"NO_COLOR=1", "HOME=" + t.TempDir(), "USER=root"}

	code, out, errOut := runBerth(t, env, "status", "-json", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var st statusReport
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 1 || st.Services[0].RunningReplicas != 3 || st.Services[0].DesiredReplicas != 3 {
		t.Fatalf("services: %+v", st.Services)
	}
	for i, r := range st.Services[0].Replicas {
		want := []string{"node1", "node2", "node3"}[i]
		if r.Node != want || r.Replica != i+1 || r.State != "running" || r.Container != planner.ContainerName(project, "web", i+1) {
			t.Errorf("replica %d: %+v, want on %s", i+1, r, want)
		}
	}

	c.StopSSHD(t, "node2")
	start := time.Now()
	code, out, errOut = runBerth(t, env, "status", dir)
	d := time.Since(start)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	t.Logf("status with node2 down (%s):\n%s", d, out)
	for _, want := range []string{
		"Project " + project + ": 2 of 3 nodes reachable",
		"web       2/3",
		"1         node1   " + project + "-web-1   running",
		"3         node3   " + project + "-web-3   running",
		"Unreachable nodes",
		"  node2: connect to " + c.Node(t, "node2").Addr + ":22: connection refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "node2   "+project) {
		t.Error("a replica on the unreachable node2 is shown")
	}
	if d > 10*time.Second {
		t.Errorf("status took %s with node2's sshd stopped", d)
	}
}
