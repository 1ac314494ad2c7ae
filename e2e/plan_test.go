package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/testcluster"
)

// berth plan -detailed-exitcode over the three nodes: 2 with changes
// present (a first deploy; a replica stopped by hand), 0 with none, 1 on
// an error (a service that cannot be placed, a configuration that does not
// parse), never 2 then. Without the flag, changes give 0.
func TestPlanDetailedExitcode(t *testing.T) {
	c := testcluster.Require(t)
	const port = 18301
	dir := c.ConfigDir(t, map[string]string{"main.hcl": rWeb(testcluster.ImageV1, port, "500ms", 1, "")})
	project := filepath.Base(dir)

	r := berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 2 || !strings.Contains(r.out, "Plan: 3 to add, 0 to change, 0 to replace, 0 to destroy.") {
		t.Fatalf("first deploy: want exit 2 and 3 to add:\n%s", r)
	}
	if r := berth(t, nil, "plan", dir); r.code != 0 || !strings.Contains(r.out, "Plan: 3 to add") {
		t.Fatalf("without -detailed-exitcode changes exit 0:\n%s", r)
	}

	mustBerth(t, nil, "apply", "-auto-approve", dir)
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 0 || !strings.Contains(r.out, "No changes. The cluster matches the configuration.") {
		t.Fatalf("after the apply: want exit 0 and no changes:\n%s", r)
	}

	// Drift on one node is a change too.
	cs := containersOf(t, c, "node2", project)
	if len(cs) != 1 {
		t.Fatalf("node2: %v", cs)
	}
	if err := c.Docker(t, "node2").ContainerStop(context.Background(), cs[0].ID, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 2 || !strings.Contains(r.out, "drift") || !strings.Contains(r.out, "node2") {
		t.Fatalf("a replica stopped on node2: want exit 2 and the drift:\n%s", r)
	}
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 0 {
		t.Fatalf("after repairing the drift: want exit 0:\n%s", r)
	}

	// Errors exit 1, though changes would be present.
	writeMain(t, dir, strings.Replace(rWeb(testcluster.ImageV2, port, "500ms", 1, ""), "replicas          = 3", "replicas          = 4", 1))
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 1 || !strings.Contains(r.err, "main.hcl") || strings.Contains(r.out, "Plan:") {
		t.Fatalf("4 replicas, at most 1 per node, on 3 nodes: want exit 1 and the error:\n%s", r)
	}
	writeMain(t, dir, rWeb(testcluster.ImageV2, port, "500ms", 1, "")+"\nservice {\n")
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 1 || !strings.Contains(r.err, "main.hcl:") {
		t.Fatalf("a configuration that does not parse: want exit 1 and the error:\n%s", r)
	}
	// And the v2 update is a change again.
	writeMain(t, dir, rWeb(testcluster.ImageV2, port, "500ms", 1, ""))
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 2 || !strings.Contains(r.out, "3 to replace") {
		t.Fatalf("an image update: want exit 2:\n%s", r)
	}
}

// berth show PLANFILE renders exactly what berth plan printed when it saved
// the file: -json the same document (compared parsed), text the same text.
func TestShowSavedPlanEqualsPlan(t *testing.T) {
	c := testcluster.Require(t)
	const port = 18302
	dir := c.ConfigDir(t, map[string]string{"main.hcl": rWeb(testcluster.ImageV1, port, "500ms", 1, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	// A plan with replaces and field diffs, plus a new service.
	writeMain(t, dir, rWeb(testcluster.ImageV2, port, "500ms", 1, `  env = {
    GREETING = "hello"
  }
`)+`
service "side" {
  image = "berth-test/echo:v1"
  placement {
    constraint = node.name == "node3"
  }
}
`)
	tmp := t.TempDir()
	jsonFile, textFile := filepath.Join(tmp, "j.plan"), filepath.Join(tmp, "t.plan")

	pj := mustBerth(t, nil, "plan", "-json", "-out", jsonFile, dir)
	sj := mustBerth(t, nil, "show", "-json", jsonFile)
	var planDoc, showDoc map[string]any
	if err := json.Unmarshal([]byte(pj.out), &planDoc); err != nil {
		t.Fatalf("plan -json: %v\n%s", err, pj.out)
	}
	if err := json.Unmarshal([]byte(sj.out), &showDoc); err != nil {
		t.Fatalf("show -json: %v\n%s", err, sj.out)
	}
	if acts, _ := planDoc["actions"].([]any); len(acts) != 4 {
		t.Fatalf("want 4 actions (3 replaces, 1 create), got %d:\n%s", len(acts), pj.out)
	}
	if diff := cmp.Diff(planDoc, showDoc); diff != "" {
		t.Errorf("show -json differs from plan -json (-plan +show):\n%s", diff)
	}

	pt := mustBerth(t, nil, "plan", "-out", textFile, dir)
	saved := fmt.Sprintf("\nSaved the plan to %s. To carry it out exactly: berth apply %s\n", textFile, textFile)
	planText, ok := strings.CutSuffix(pt.out, saved)
	if !ok {
		t.Fatalf("plan -out does not end with %q:\n%s", saved, pt.out)
	}
	for _, want := range []string{"Plan: 1 to add, 0 to change, 3 to replace, 0 to destroy.", `"berth-test/echo:v1" -> "berth-test/echo:v2"`, "GREETING"} {
		if !strings.Contains(planText, want) {
			t.Fatalf("plan text lacks %q:\n%s", want, planText)
		}
	}
	st := mustBerth(t, nil, "show", textFile)
	if diff := cmp.Diff(planText, st.out); diff != "" {
		t.Errorf("show differs from the plan's text (-plan +show):\n%s", diff)
	}
	// The two saved plans are the same plan: nothing changed in between.
	if st := mustBerth(t, nil, "show", jsonFile); st.out != planText {
		t.Errorf("show of the -json plan file differs from the text plan:\n%s\n---\n%s", st.out, planText)
	}
	if sj2 := mustBerth(t, nil, "show", "-json", textFile); sj2.out != sj.out {
		t.Errorf("show -json of the text plan file differs from the -json one")
	}
}

// A port taken on node2 (an unlabelled container publishing it, started
// straight through node2's engine) between plan -out and apply PLANFILE:
// the apply refuses with "stale plan", naming node2 and the port, and
// changes nothing on any node.
func TestStalePlanPortTaken(t *testing.T) {
	c := testcluster.Require(t)
	// A saved plan's fingerprint covers every container that publishes a
	// port on a node, other projects' too: tests running meanwhile (an
	// ingress update moves backends) would change node1 as well.
	c.Exclusive(t)
	const port = 18303
	dir := c.ConfigDir(t, map[string]string{"main.hcl": rWeb(testcluster.ImageV1, port, "500ms", 1, "")})
	project := filepath.Base(dir)
	planFile := filepath.Join(t.TempDir(), "web.plan")
	mustBerth(t, nil, "plan", "-out", planFile, dir)

	foreign := runForeign(t, c, "node2", project+"-squatter", port) // removed when the test ends
	volumesBefore := map[string][]string{}
	for _, n := range c.Nodes {
		volumesBefore[n.Name] = volumeNames(t, c, n.Name, project)
	}

	r := berth(t, nil, "apply", planFile)
	if r.code != 1 || !strings.Contains(r.err, "stale plan") {
		t.Fatalf("want the apply refused as a stale plan:\n%s", r)
	}
	// The message's section for node2 names the port; no other node is
	// named as changed.
	sections := regexp.MustCompile(`(?m)^  node (\S+):`).FindAllStringSubmatchIndex(r.err, -1)
	var changed []string
	node2 := ""
	for i, m := range sections {
		name := r.err[m[2]:m[3]]
		changed = append(changed, name)
		end := len(r.err)
		if i+1 < len(sections) {
			end = sections[i+1][0]
		}
		if name == "node2" {
			node2 = r.err[m[0]:end]
		}
	}
	if !slices.Equal(changed, []string{"node2"}) {
		t.Errorf("the stale plan error names nodes %q as changed, want node2 only:\n%s", changed, r.err)
	}
	if !strings.Contains(node2, fmt.Sprintf("%d/tcp", port)) || !strings.Contains(node2, project+"-squatter") {
		t.Errorf("the stale plan error does not name port %d/tcp and the container holding it on node2:\n%s", port, r.err)
	}
	// Nothing changed: no container of the project anywhere, its volumes as
	// before (no lock left), the foreign container untouched.
	for _, n := range c.Nodes {
		if cs := containersOf(t, c, n.Name, project); len(cs) != 0 {
			t.Errorf("%s: the refused apply created %v", n.Name, cs)
		}
		if got := volumeNames(t, c, n.Name, project); !slices.Equal(got, volumesBefore[n.Name]) {
			t.Errorf("%s: the project's volumes changed: before %q, after %q", n.Name, volumesBefore[n.Name], got)
		}
	}
	info, err := c.Docker(t, "node2").ContainerInspect(context.Background(), foreign.ID)
	if err != nil || !info.State.Running {
		t.Errorf("the foreign container on node2 is not running any more: %v", err)
	}
	if body := get(c.Node(t, "node2").Addr, port, "/"); !strings.HasPrefix(body, "echo v1") {
		t.Errorf("node2:%d answers %q, want the foreign container", port, body)
	}
	assertNoLock(t, c, project)
	if _, err := os.Stat(planFile); err != nil {
		t.Errorf("the refused plan file: %v", err)
	}
}

// volumeNames lists the names of the project's volumes on a node, sorted.
func volumeNames(t *testing.T, c *testcluster.Cluster, node, project string) []string {
	t.Helper()
	var out []string
	for _, v := range projectVolumes(t, c, node, project) {
		out = append(out, v.Name)
	}
	slices.Sort(out)
	return out
}
