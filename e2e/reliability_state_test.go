package e2e

// Scenarios 5, 7, 8 and 9: concurrent applies, a canary secret, drift, and
// the image of an old container removed.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/internal/testcluster"
)

// applyWindow is one apply's span of changes on the nodes, from its -json
// stream: the first event's time to the result line's (written after the
// commit, before the lock is released).
type applyWindow struct {
	run       int
	pid       int
	applyID   string
	from, to  time.Time
	code      int
	out, err  string
	ranAction bool
}

// Scenario 5: two, then five, applies of the same project at once, each with
// a different configuration (so each has work to do). Without -lock-timeout
// one runs and the others fail at once naming the holder (its pid); with
// -lock-timeout they queue and all run. Never interleaved: the applies'
// windows of changes (their -json event streams) and their audit records
// never overlap, and the end state is the configuration of the last one.
func TestReliabilityConcurrentApplies(t *testing.T) {
	c := testcluster.Require(t)
	const port = 18913
	project := testcluster.ProjectName(t)
	for _, round := range []struct {
		n       int
		timeout string
	}{{2, ""}, {2, "3m"}, {5, ""}, {5, "3m"}} {
		name := fmt.Sprintf("%d-at-once", round.n)
		if round.timeout != "" {
			name += "-lock-timeout"
		}
		t.Run(name, func(t *testing.T) {
			scenarioRun(t, scConcurrent)
			tag := newTag()
			dirs := make([]string, round.n)
			for i := range dirs {
				dirs[i] = c.ConfigDirProject(t, project, map[string]string{"main.hcl": rWeb(imageOf("v1"), port, "200ms", 3,
					fmt.Sprintf("  env = {\n    NODE = \"%s-run%d\"\n  }\n", tag, i))})
			}
			args := []string{"apply", "-auto-approve", "-json"}
			if round.timeout != "" {
				args = append(args, "-lock-timeout", round.timeout)
			}
			ws := make([]*applyWindow, round.n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range dirs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ws[i] = runWindow(t, i, append(append([]string(nil), args...), dirs[i]))
				}()
			}
			close(start)
			wg.Wait()
			pids := map[int]bool{}
			for _, w := range ws {
				pids[w.pid] = true
			}
			var ran []*applyWindow
			holder := regexp.MustCompile(`locked on node node1 by \S+@\S+ \(pid (\d+), since [^,]+, lock ID [0-9a-f]+\)`)
			for _, w := range ws {
				switch {
				case w.code == 0 && w.ranAction:
					ran = append(ran, w)
				case w.code == 1 && round.timeout == "":
					m := holder.FindStringSubmatch(w.err)
					if m == nil {
						t.Fatalf("run %d failed without naming the holder:\n%s", w.run, w.err)
					}
					if pid, _ := strconv.Atoi(m[1]); !pids[pid] || pid == w.pid {
						t.Fatalf("run %d names pid %s as the holder, not one of the other applies %v", w.run, m[1], pids)
					}
				default:
					t.Fatalf("run %d: exit %d (ran actions: %v):\n%s\n%s", w.run, w.code, w.ranAction, w.out, w.err)
				}
			}
			if len(ran) == 0 || (round.timeout != "" && len(ran) != round.n) {
				t.Fatalf("%d of %d applies ran (lock timeout %q)", len(ran), round.n, round.timeout)
			}
			sort.Slice(ran, func(i, j int) bool { return ran[i].from.Before(ran[j].from) })
			for i := 1; i < len(ran); i++ {
				if !ran[i].from.After(ran[i-1].to) {
					t.Fatalf("applies interleaved: run %d [%s, %s] and run %d [%s, %s]", ran[i-1].run,
						ran[i-1].from.Format(time.StampMilli), ran[i-1].to.Format(time.StampMilli), ran[i].run,
						ran[i].from.Format(time.StampMilli), ran[i].to.Format(time.StampMilli))
				}
			}
			// The audit records (berth status -json) agree: one per apply
			// that ran, none overlapping.
			st := mustBerth(t, nil, "status", "-json", dirs[0])
			var doc struct {
				Applies []struct {
					ApplyID string    `json:"apply_id"`
					Started time.Time `json:"started"`
					Ended   time.Time `json:"ended"`
					Result  string    `json:"result"`
				} `json:"applies"`
			}
			if err := json.Unmarshal([]byte(st.out), &doc); err != nil {
				t.Fatalf("status -json: %v\n%s", err, st.out)
			}
			audit := map[string][2]time.Time{}
			for _, a := range doc.Applies {
				audit[a.ApplyID] = [2]time.Time{a.Started, a.Ended}
			}
			var spans [][2]time.Time
			for _, w := range ran {
				span, ok := audit[w.applyID]
				if !ok {
					t.Fatalf("no audit record for apply %s (run %d): %+v", w.applyID, w.run, doc.Applies)
				}
				spans = append(spans, span)
			}
			sort.Slice(spans, func(i, j int) bool { return spans[i][0].Before(spans[j][0]) })
			for i := 1; i < len(spans); i++ {
				// Audit times have a resolution of a second.
				if spans[i][0].Before(spans[i-1][1].Truncate(time.Second)) {
					t.Fatalf("audit records overlap: %v and %v", spans[i-1], spans[i])
				}
			}
			// The last apply's configuration is what runs.
			last := ran[len(ran)-1]
			for _, n := range c.Nodes {
				if body := get(n.Addr, port, "/"); !strings.Contains(body, fmt.Sprintf("%s-run%d", tag, last.run)) {
					t.Fatalf("%s answers %q; the last apply was run %d", n.Name, body, last.run)
				}
			}
			assertClean(t, c, project)
			scenarioFigure(scConcurrent, "%d at once%s: %d ran", round.n, map[bool]string{true: " (-lock-timeout)", false: ""}[round.timeout != ""], len(ran))
		})
	}
}

// newTag returns a short random tag.
func newTag() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runWindow runs berth apply -json and returns its window of changes.
func runWindow(t *testing.T, i int, args []string) *applyWindow {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := execCommand(ctx, testcluster.BuildBerth(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	w := &applyWindow{run: i}
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return w
	}
	w.pid = cmd.Process.Pid
	err := cmd.Wait()
	w.out, w.err = o.String(), e.String()
	if ee, ok := err.(*exec.ExitError); ok {
		w.code = ee.ExitCode()
	} else if err != nil {
		w.code = -2
	}
	for _, l := range strings.Split(w.out, "\n") {
		var ev struct {
			Type    string    `json:"type"`
			Time    time.Time `json:"time"`
			ApplyID string    `json:"apply_id"`
		}
		if json.Unmarshal([]byte(l), &ev) != nil || ev.Time.IsZero() {
			continue
		}
		w.applyID = ev.ApplyID
		if w.from.IsZero() {
			w.from = ev.Time
		}
		w.to = ev.Time
		w.ranAction = w.ranAction || ev.Type == "action_done"
	}
	return w
}

// Scenario 7: a canary secret (a sensitive variable used in env, given by
// -var and by BERTH_VAR_canary) never appears in what berth shows or
// stores: plan text and JSON, the saved plan file, show, apply progress
// (text and -json), error messages (an apply that fails while the secret is
// in play, a failed validation), status, container labels and names, and the
// lock, audit and commit volumes berth keeps on the nodes. The container's
// environment does hold it.
func TestReliabilityCanarySecret(t *testing.T) {
	c := testcluster.Require(t)
	scenarioRun(t, scSecret)
	const port = 18914
	canary := "canary-" + newTag() + newTag()
	project := testcluster.ProjectName(t)
	cfg := func(version string) string {
		return `
variable "canary" {
  type      = string
  sensitive = true
}
` + rWeb(imageOf(version), port, "200ms", 3, "  env = {\n    NODE              = var.canary\n    BROKEN_EXIT_AFTER = \"300ms\"\n  }\n")
	}
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": cfg("v1")})
	byFlag := []string{"-var", "canary=" + canary}
	byEnv := []string{"BERTH_VAR_canary=" + canary}
	forms := []string{canary, base64.StdEncoding.EncodeToString([]byte(canary)), hex.EncodeToString([]byte(canary))}
	checked := 0
	check := func(what, text string) {
		t.Helper()
		checked++
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Fatalf("the secret appears in %s:\n%s", what, text)
			}
		}
	}
	checkRun := func(what string, r run) {
		t.Helper()
		check(what+" (stdout)", r.out)
		check(what+" (stderr)", r.err)
	}
	planFile := filepath.Join(t.TempDir(), "web.plan")
	checkRun("plan", mustBerth(t, nil, append([]string{"plan"}, append(byFlag, dir)...)...))
	checkRun("plan -json", mustBerth(t, byEnv, "plan", "-json", dir))
	checkRun("plan -out", mustBerth(t, byEnv, "plan", "-out", planFile, dir))
	b, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	check("the saved plan file", string(b))
	checkRun("show", mustBerth(t, nil, "show", planFile))
	checkRun("show -json", mustBerth(t, nil, "show", "-json", planFile))
	checkRun("apply PLANFILE", mustBerth(t, byEnv, "apply", planFile))
	// The container's environment holds the secret (the echo server says
	// its NODE).
	for _, n := range c.Nodes {
		if body := get(n.Addr, port, "/"); body != "echo v1 on "+canary+"\n" {
			t.Fatalf("%s answers %q: the secret did not reach the container's env", n.Name, body)
		}
	}
	writeMain(t, dir, cfg("v2"))
	checkRun("apply (text)", mustBerth(t, nil, append([]string{"apply", "-auto-approve"}, append(byFlag, dir)...)...))
	writeMain(t, dir, cfg("v1"))
	checkRun("apply -json", mustBerth(t, byEnv, "apply", "-auto-approve", "-json", dir))
	// A failing apply with the secret in play: the broken image logs its
	// NODE (the secret) before it fails; the error shows its last log lines.
	writeMain(t, dir, cfg("broken"))
	r := berth(t, byEnv, "apply", "-auto-approve", dir)
	if r.code != 1 || !strings.Contains(r.err, "last log lines") || !strings.Contains(r.err, "listening on :8080 as (sensitive value)") {
		t.Fatalf("want a failed apply showing the redacted log lines:\n%s", r)
	}
	checkRun("a failed apply", r)
	r = berth(t, byEnv, "apply", "-auto-approve", "-json", dir)
	if r.code != 1 {
		t.Fatalf("want a failed apply -json:\n%s", r)
	}
	checkRun("a failed apply -json", r)
	checkRun("status", mustBerth(t, byEnv, "status", dir))
	checkRun("status -json", mustBerth(t, byEnv, "status", "-json", dir))
	// A validation that fails on the secret's value.
	bad := c.ConfigDirProject(t, project, map[string]string{"main.hcl": strings.Replace(cfg("v1"), "sensitive = true",
		"sensitive = true\n  validation {\n    condition     = length(var.canary) > 100\n    error_message = \"The canary is too short.\"\n  }", 1)})
	r = berth(t, byEnv, "plan", bad)
	if r.code != 1 || !strings.Contains(r.err, "canary is too short") {
		t.Fatalf("want a failed validation:\n%s", r)
	}
	checkRun("a failed validation", r)
	r = berth(t, nil, "validate", "-var", "canary="+canary, bad)
	checkRun("validate", r)

	// What berth leaves on the nodes: container names and labels (and the
	// rest of their configuration but the environment), and its volumes.
	for _, n := range c.Nodes {
		cli := c.Docker(t, n.Name)
		cs := containersOf(t, c, n.Name, project)
		if len(cs) == 0 {
			t.Fatalf("%s: no container", n.Name)
		}
		for _, ct := range cs {
			info, err := cli.ContainerInspect(context.Background(), ct.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !contains(info.Config.Env, "NODE="+canary) {
				t.Fatalf("%s: %s's environment lacks the secret: %v", n.Name, ct.Name, info.Config.Env)
			}
			info.Config.Env = nil
			j, _ := json.Marshal(info)
			check(n.Name+": container "+ct.Name+" (inspect without Env)", string(j))
		}
		for _, v := range projectVolumes(t, c, n.Name, project) {
			j, _ := json.Marshal(v)
			check(n.Name+": volume "+v.Name, string(j))
		}
	}
	scenarioFigure(scSecret, "%d outputs and records checked", checked)
}

// Scenario 8: drift made by hand on a deployed project. A managed container
// deleted, one stopped, one recreated with an edited berth.spec label, and
// an unlabelled container holding a port berth needs: plan shows each
// exactly; apply fixes what is berth's and never touches the unlabelled
// container (placement avoids its node, or the plan fails saying why).
func TestReliabilityDrift(t *testing.T) {
	c := testcluster.Require(t)
	scenarioRun(t, scDrift)
	const port, apiPort = 18915, 18916
	project := testcluster.ProjectName(t)
	api := fmt.Sprintf(`
service "api" {
  image             = "berth-test/echo:v1"
  stop_grace_period = "1s"
  port {
    target    = 8080
    published = %d
  }
  health {
    tcp          = true
    interval     = "100ms"
    start_period = "5s"
  }
  update {
    monitor = "200ms"
  }
}
`, apiPort)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": rWeb(imageOf("v1"), port, "200ms", 3, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	name := func(i int) string { return fmt.Sprintf("%s-web-%d", project, i) }
	ctx := context.Background()
	d1, d2, d3 := c.Docker(t, "node1"), c.Docker(t, "node2"), c.Docker(t, "node3")

	// web.1 deleted, web.2 stopped, web.3 recreated with an edited label.
	if err := d1.ContainerRemove(ctx, name(1), container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	stop := 1
	if err := d2.ContainerStop(ctx, name(2), container.StopOptions{Timeout: &stop}); err != nil {
		t.Fatal(err)
	}
	info, err := d3.ContainerInspect(ctx, name(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := d3.ContainerRemove(ctx, name(3), container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	info.Config.Labels["berth.spec"] = strings.Replace(info.Config.Labels["berth.spec"], `"stop_grace":1`, `"stop_grace":7`, 1)
	created, err := d3.ContainerCreate(ctx, info.Config, info.HostConfig, nil, nil, name(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := d3.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	// An unlabelled container takes web.1's port on node1.
	foreign := runForeign(t, c, "node1", project+"-squatter", port)

	r := berth(t, nil, "plan", dir)
	if r.code != 1 {
		t.Fatalf("plan with web.1's port taken on node1: want it to fail (no other node for web.1):\n%s", r)
	}
	for _, want := range []string{`Cannot place service "web": 2 of 3 replicas fit`,
		fmt.Sprintf("node1: port %d/tcp is held by container %s-squatter (not managed by berth)", port, project)} {
		if !strings.Contains(r.err, want) {
			t.Fatalf("plan does not say %q:\n%s", want, r)
		}
	}

	// Without the squatter, the plan shows each drift exactly.
	removeForeign(t, c, "node1", foreign)
	r = mustBerth(t, nil, "plan", dir)
	for _, want := range []string{
		"+   web.1 on node1 (create) [drift]: drift: the container is missing (removed outside berth, or on a node no longer configured)",
		"-/+ web.2 on node2 (replace, stop-first) [drift]: drift: the container exited (code 0) outside berth",
		"stop-first: the old container is not running",
		"-/+ web.3 on node3 (replace, stop-first) [drift]: drift: berth's labels on the container were changed outside berth",
		fmt.Sprintf("stop-first: port %d/tcp on node3 is held by the old container, so it must stop first", port),
		"Plan: 1 to add, 0 to change, 2 to replace, 0 to destroy.",
	} {
		if !strings.Contains(r.out, want) {
			t.Fatalf("plan lacks %q:\n%s", want, r)
		}
	}
	// A new service whose port an unlabelled container holds on node1:
	// placement avoids node1; apply fixes web and leaves the squatter.
	foreign = runForeign(t, c, "node1", project+"-squatter", apiPort)
	writeMain(t, dir, rWeb(imageOf("v1"), port, "200ms", 3, "")+api)
	r = mustBerth(t, nil, "apply", "-auto-approve", dir)
	if !strings.Contains(r.out, "+   api.1 on node2 (create)") {
		t.Fatalf("api is not placed on node2 (node1's port is taken):\n%s", r)
	}
	assertServing(t, c, port, "v1")
	after, err := d1.ContainerInspect(ctx, foreign.ID)
	if err != nil || !after.State.Running || after.State.StartedAt != foreign.State.StartedAt || after.Name != foreign.Name {
		t.Fatalf("the unlabelled container was touched: %+v %v", after.State, err)
	}
	if body := get(c.Node(t, "node2").Addr, apiPort, "/"); !strings.Contains(body, "echo v1") {
		t.Fatalf("api on node2 answers %q", body)
	}
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 0 {
		t.Fatalf("plan after the apply is not empty:\n%s", r)
	}
	scenarioFigure(scDrift, "4 plan lines exact; foreign port: plan refused, then placement avoided node1; foreign container untouched")
}

// runForeign starts an unlabelled echo container publishing port on node.
func runForeign(t *testing.T, c *testcluster.Cluster, node, name string, port int) container.InspectResponse {
	t.Helper()
	ctx := context.Background()
	cli := c.Docker(t, node)
	cfg := &container.Config{Image: imageOf("v1"), ExposedPorts: nat.PortSet{"8080/tcp": {}}}
	hc := &container.HostConfig{PortBindings: nat.PortMap{"8080/tcp": {{HostPort: strconv.Itoa(port)}}}}
	cr, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ContainerRemove(context.Background(), cr.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := cli.ContainerInspect(ctx, cr.ID)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func removeForeign(t *testing.T, c *testcluster.Cluster, node string, info container.InspectResponse) {
	t.Helper()
	if err := c.Docker(t, node).ContainerRemove(context.Background(), info.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// Scenario 9: the image of an old container removed from its node before an
// apply. What can really happen on Docker: the engine refuses to delete the
// image of a running container (docker rmi -f only untags it: the image
// stays, by ID), while the image of a stopped container can be deleted with
// rmi -f (the container keeps its layers and still starts). berth's rollback
// and recovery restart the old containers themselves, by ID, never recreate
// them from an image. So: (1) with the images of the running replicas
// untagged, a failing update still rolls back to the old version; (2) a
// stopped replica whose image was deleted does not block the apply (a
// rollback would only rename it back, not restart it); (3) after a killed
// apply, the image of the container it had set aside (stopped) deleted: the
// next apply still restores that container, then updates. The pre-flight
// refusal for a running old container whose image is gone cannot be
// produced on Docker; executor's TestApplyPreflightOldImageOnlyForRunning
// covers it.
func TestReliabilityRollbackImageRemoved(t *testing.T) {
	c := testcluster.Require(t)
	scenarioRun(t, scImageGone)
	const port = 18917
	project := testcluster.ProjectName(t)
	// Images of this test's own on every node, so that removing them
	// disturbs no other test: echo v1 and v2 with a label, committed on each
	// node (new image IDs).
	tag := newTag()
	old, next := "berth-test/rb-"+tag+":old", "berth-test/rb-"+tag+":next"
	ctx := context.Background()
	for _, n := range c.Nodes {
		cli := c.Docker(t, n.Name)
		for ref, base := range map[string]string{old: imageOf("v1"), next: imageOf("v2")} {
			cr, err := cli.ContainerCreate(ctx, &container.Config{Image: base}, nil, nil, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = cli.ContainerCommit(ctx, cr.ID, container.CommitOptions{Reference: ref, Changes: []string{"LABEL berth-test.rb=" + ref}})
			cli.ContainerRemove(ctx, cr.ID, container.RemoveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true}) })
		}
	}
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": rWeb(old, port, "200ms", 1, "")})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	d2 := c.Docker(t, "node2")
	web2 := func() ctr {
		t.Helper()
		for _, ct := range containersOf(t, c, "node2", project) {
			if strings.HasPrefix(ct.Name, project+"-web-2") {
				return ct
			}
		}
		t.Fatal("no web-2 on node2")
		return ctr{}
	}

	// (1) Running: rmi -f only untags; a failed update rolls back.
	if _, err := d2.ImageRemove(ctx, old, image.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d2.ImageInspectWithRaw(ctx, web2().ImageID); err != nil {
		t.Fatalf("docker rmi -f removed the image of a running container: %v", err)
	}
	// (The broken image exits 300 ms after it starts.)
	writeMain(t, dir, rWeb(imageOf("broken"), port, "200ms", 1, "  env = {\n    BROKEN_EXIT_AFTER = \"300ms\"\n  }\n"))
	r := berth(t, nil, "apply", "-auto-approve", dir)
	if r.code != 1 || !strings.Contains(r.err, "Rolled back") {
		t.Fatalf("want the broken update rolled back:\n%s", r)
	}
	assertServing(t, c, port, "v1")
	assertClean(t, c, project)

	// (2) Stopped: rmi -f of its image ID deletes the image; the apply
	// goes on (a rollback would not restart it).
	w := web2()
	stop := 1
	if err := d2.ContainerStop(ctx, w.ID, container.StopOptions{Timeout: &stop}); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.ImageRemove(ctx, w.ImageID, image.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d2.ImageInspectWithRaw(ctx, w.ImageID); err == nil {
		t.Fatal("docker rmi -f kept the image of a stopped container")
	}
	writeMain(t, dir, rWeb(next, port, "200ms", 1, ""))
	if r := berth(t, nil, "apply", "-auto-approve", dir); r.code != 0 {
		t.Fatalf("the apply was refused or failed although no rollback needs the deleted image:\n%s", r)
	}
	assertServing(t, c, port, "v2")
	assertClean(t, c, project)

	// (3) Killed after node2's old container was stopped and set aside;
	// then its image deleted. The next apply restores it and updates.
	writeMain(t, dir, rWeb(imageOf("v1"), port, "200ms", 1, ""))
	if r := berth(t, []string{"BERTH_TEST_KILL_AT=renamed#2"}, "apply", "-auto-approve", dir); r.code != -1 {
		t.Fatalf("berth was not killed:\n%s", r)
	}
	w = web2()
	if !strings.Contains(w.Name, "_berth_old_") || w.State == "running" {
		t.Fatalf("node2's old container is not stopped and aside: %v", w)
	}
	if _, err := d2.ImageRemove(ctx, w.ImageID, image.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	r = berth(t, nil, "apply", "-auto-approve", dir)
	if r.code != 0 || !strings.Contains(r.out, "An interrupted apply") {
		t.Fatalf("want the interrupted apply recovered (its aside container restored without its image), then the update:\n%s", r)
	}
	assertServing(t, c, port, "v1")
	assertClean(t, c, project)
	scenarioFigure(scImageGone, "untagged: rolled back; deleted (stopped): applied; deleted (set aside by a killed run): recovered")
}
