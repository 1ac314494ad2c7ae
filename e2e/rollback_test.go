package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/berth-dev/berth/internal/testcluster"
)

// berth rollback (issue 16 item 2) against the test cluster. Projects are
// rb16-*, ports 19000-19049.

// rbProject is a project of these tests, removed when the test ends.
func rbProject(t *testing.T, c *testcluster.Cluster, main string) (project, dir string) {
	t.Helper()
	project = "rb16-" + newTag()
	return project, c.ConfigDirProject(t, project, map[string]string{"main.hcl": main})
}

// applyID applies dir and returns the apply's ID (from apply -json).
func applyID(t *testing.T, dir string) string {
	t.Helper()
	ja := parseJSONApply(t, mustBerth(t, nil, "apply", "-auto-approve", "-json", dir).out)
	id, _ := ja.Result["apply_id"].(string)
	if ja.Result["result"] != "applied" || id == "" {
		t.Fatalf("apply result: %v", ja.Result)
	}
	return id
}

// rbReplicas returns, per node, the image reference and image ID of the
// project's running web replica, straight from the node's engine.
func rbReplicas(t *testing.T, c *testcluster.Cluster, project string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, n := range c.Nodes {
		for _, ct := range containersOf(t, c, n.Name, project) {
			if strings.HasPrefix(ct.Name, project+"-web-") && ct.State == "running" {
				out[n.Name] = [2]string{ct.Image, ct.ImageID}
			}
		}
	}
	return out
}

// assertRunning checks that every node runs one web replica of ref (whose
// ID on that node is the image's) and that each answers as version.
func assertRunning(t *testing.T, c *testcluster.Cluster, project, ref, version string, port int) {
	t.Helper()
	got := rbReplicas(t, c, project)
	if len(got) != len(c.Nodes) {
		t.Fatalf("running web replicas: %v", got)
	}
	for _, n := range c.Nodes {
		if got[n.Name][0] != ref || got[n.Name][1] != imageID(t, c.Docker(t, n.Name), ref) {
			t.Fatalf("%s runs %v, want %s", n.Name, got[n.Name], ref)
		}
		deadline := time.Now().Add(30 * time.Second)
		for body := ""; !strings.HasPrefix(body, "echo "+version); body = get(n.Addr, port, "/") {
			if time.Now().After(deadline) {
				t.Fatalf("%s:%d answers %q, want echo %s", n.Name, port, body, version)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// Apply v1, apply v2, rollback: every replica runs v1 again (image and
// answer), through a health-gated plan shown first; plan then shows v2 as
// the configuration's wish; a second rollback returns to v2.
func TestRollbackToPrevious(t *testing.T) {
	c := testcluster.Require(t)
	const port = 19001
	project, dir := rbProject(t, c, webHCL("web", testcluster.ImageV1, port, ""))
	first := applyID(t, dir)
	setImage(t, dir, testcluster.ImageV1, testcluster.ImageV2)
	applyID(t, dir)
	assertRunning(t, c, project, testcluster.ImageV2, "v2", port)

	// Health-gated, one node at a time: never fewer than two replicas
	// answer while the rollback replaces them.
	pl := startPoller(c, port)
	r := mustBerth(t, nil, "rollback", "-auto-approve", dir)
	minUp, rounds, versions := pl.finish()
	if rounds < 5 || minUp < 2 || !versions["v1"] {
		t.Fatalf("during the rollback: %d rounds, as few as %d replicas answered, versions %v", rounds, minUp, versions)
	}
	for _, want := range []string{"Rollback to apply " + first, `"berth-test/echo:v2" -> "berth-test/echo:v1"`, "Plan: 0 to add, 0 to change, 3 to replace, 0 to destroy."} {
		if !strings.Contains(r.out, want) {
			t.Fatalf("rollback output lacks %q:\n%s", want, r)
		}
	}
	assertRunning(t, c, project, testcluster.ImageV1, "v1", port)

	// The configuration is untouched: plan wants v2 back.
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 2 || !strings.Contains(r.out, `"berth-test/echo:v1" -> "berth-test/echo:v2"`) ||
		!strings.Contains(r.out, "drift: it runs the revision of apply "+first+" (berth rollback)") {
		t.Fatalf("plan after the rollback:\n%s", r)
	}
	// The rollback was an apply of its own: rolling back again returns to v2.
	ja := parseJSONApply(t, mustBerth(t, nil, "rollback", "-auto-approve", "-json", dir).out)
	if ja.Result["result"] != "applied" || ja.Plan["rollback_to"] == first {
		t.Fatalf("second rollback: %v, plan rollback_to %v", ja.Result, ja.Plan["rollback_to"])
	}
	assertRunning(t, c, project, testcluster.ImageV2, "v2", port)
}

// -to picks a revision; a revision whose image was removed from every node
// and from the local engine is refused, naming the image, nothing changed.
func TestRollbackToAndImageGone(t *testing.T) {
	c := testcluster.Require(t)
	const port = 19002
	ctx := context.Background()
	// An image of this test's own on the local engine (berth sends it to
	// the nodes), so that removing it disturbs no other test.
	host := hostDocker(t)
	gone := "berth-test/rb16-" + newTag() + ":gone"
	cr, err := host.ContainerCreate(ctx, &container.Config{Image: testcluster.ImageV1}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = host.ContainerCommit(ctx, cr.ID, container.CommitOptions{Reference: gone, Changes: []string{"LABEL berth-test.rb16=" + gone}})
	host.ContainerRemove(ctx, cr.ID, container.RemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	goneID := imageID(t, host, gone)
	removeImagesLater(t, c, func() []string { return []string{goneID} })

	project, dir := rbProject(t, c, webHCL("web", gone, port, ""))
	atGone := applyID(t, dir)
	assertRunning(t, c, project, gone, "v1", port)
	setImage(t, dir, gone, testcluster.ImageV1)
	atV1 := applyID(t, dir)
	setImage(t, dir, testcluster.ImageV1, testcluster.ImageV2)
	applyID(t, dir)

	// -to the first apply (a prefix of its ID): its image is still on
	// every node, so this runs it.
	r := mustBerth(t, nil, "rollback", "-auto-approve", "-to", atGone[:5], dir)
	if !strings.Contains(r.out, "Rollback to apply "+atGone) {
		t.Fatalf("rollback -to:\n%s", r)
	}
	assertRunning(t, c, project, gone, "v1", port)
	// -to the v1 apply.
	mustBerth(t, nil, "rollback", "-auto-approve", "-to", atV1, dir)
	assertRunning(t, c, project, testcluster.ImageV1, "v1", port)

	// The image removed from every node and from the local engine.
	for _, n := range c.Nodes {
		if _, err := c.Docker(t, n.Name).ImageRemove(ctx, goneID, image.RemoveOptions{Force: true}); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
	}
	if _, err := host.ImageRemove(ctx, goneID, image.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	before := rbReplicas(t, c, project)
	r = berth(t, nil, "rollback", "-auto-approve", "-to", atGone, dir)
	if r.code != 1 || !strings.Contains(r.err, "image "+gone) || !strings.Contains(r.err, "is no longer on node1, node2, node3, nor on the local engine") {
		t.Fatalf("rollback to a removed image:\n%s", r)
	}
	if after := rbReplicas(t, c, project); len(after) != len(before) {
		t.Fatalf("a refused rollback changed the replicas: %v -> %v", before, after)
	}
	assertRunning(t, c, project, testcluster.ImageV1, "v1", port)
}
