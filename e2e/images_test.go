package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/internal/testcluster"
)

// Images built on the host engine and shipped to the nodes over berth's SSH
// connections (issue 7).

// hostDocker is a client of the host's own engine (berth's local engine).
func hostDocker(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// removeImagesLater removes, when the test ends (after its project's
// containers: register it before the config directory), every image whose
// ID ids() returns, from the host and every node.
func removeImagesLater(t *testing.T, c *testcluster.Cluster, ids func() []string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		clients := []*client.Client{hostDocker(t)}
		for _, n := range c.Nodes {
			clients = append(clients, c.Docker(t, n.Name))
		}
		for _, id := range ids() {
			for _, cli := range clients {
				cli.ImageRemove(ctx, id, image.RemoveOptions{Force: true, PruneChildren: true})
			}
		}
	})
}

// imageID returns the ID of ref on cli's engine, or "".
func imageID(t *testing.T, cli *client.Client, ref string) string {
	t.Helper()
	r, err := cli.ImageInspect(context.Background(), ref)
	if err != nil {
		if client.IsErrNotFound(err) {
			return ""
		}
		t.Fatal(err)
	}
	return r.ID
}

// nodeHasImageID reports whether node holds image id (under any name).
func nodeHasImageID(t *testing.T, c *testcluster.Cluster, node, id string) bool {
	t.Helper()
	_, err := c.Docker(t, node).ImageInspect(context.Background(), id)
	if err != nil && !client.IsErrNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// builtWebHCL is a service built from ./app, one replica per node matching
// constraint.
func builtWebHCL(port, replicas int, constraint string) string {
	return fmt.Sprintf(`
service "web" {
  build {
    context = "./app"
  }
  replicas = %d
  port {
    target    = 8080
    published = %d
  }
  placement {
    constraint   = %s
    spread       = node.labels.zone
    max_per_node = 1
  }
  health {
    http     = "/healthz"
    interval = "200ms"
  }
  update {
    monitor = "500ms"
  }
}
`, replicas, port, constraint)
}

// planImages returns "kind image nodes" for each image action of a plan
// (from plan -json or apply -json's plan line).
func planImages(plan map[string]any) []string {
	var out []string
	imgs, _ := plan["images"].([]any)
	for _, x := range imgs {
		m := x.(map[string]any)
		var nodes []string
		if ns, ok := m["nodes"].([]any); ok {
			for _, n := range ns {
				nodes = append(nodes, n.(string))
			}
		}
		out = append(out, fmt.Sprintf("%s %s %s", m["kind"], m["image"], strings.Join(nodes, ",")))
	}
	return out
}

func bytesSent(t *testing.T, ja jsonApply) map[string]float64 {
	t.Helper()
	if ja.Result == nil {
		t.Fatal("apply -json printed no result line")
	}
	out := map[string]float64{}
	if m, ok := ja.Result["bytes_sent"].(map[string]any); ok {
		for k, v := range m {
			out[k] = v.(float64)
		}
	}
	return out
}

// An image built on the host, absent from the nodes, is shipped to exactly
// the nodes the plan places it on and runs there; a second apply ships
// nothing; a node already holding the image ID (under another name)
// receives nothing.
func TestImagesBuildAndShip(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	host := hostDocker(t)
	var ids []string
	removeImagesLater(t, c, func() []string { return ids })
	port := 18700 + int(time.Now().UnixNano()%90)
	dir := c.ConfigDirProject(t, project, map[string]string{
		"main.hcl":          builtWebHCL(port, 1, `node.labels.zone == "a"`),
		"app/Dockerfile":    "FROM " + testcluster.ImageV1 + "\nCOPY marker /marker\n",
		"app/marker":        randomHex(16),
		"app/README.md":     "ignored\n",
		"app/.dockerignore": "*.md\n",
	})

	// plan reports the build and the send, and builds nothing.
	var plan map[string]any
	r := mustBerth(t, nil, "plan", "-json", dir)
	if err := jsonUnmarshal(r.out, &plan); err != nil {
		t.Fatalf("plan -json: %v\n%s", err, r.out)
	}
	imgs := planImages(plan)
	if len(imgs) != 2 || !strings.HasPrefix(imgs[0], "build berth/"+project+"-web:") || !strings.HasPrefix(imgs[1], "send berth/"+project+"-web:") ||
		!strings.HasSuffix(imgs[1], " node1") {
		t.Fatalf("plan's images = %q; want a build, then a send to node1", imgs)
	}
	ref := strings.Fields(imgs[0])[1]
	if id := imageID(t, host, ref); id != "" {
		t.Fatalf("plan built %s", ref)
	}

	// apply builds on the host and sends to node1 only.
	r = mustBerth(t, nil, "apply", "-auto-approve", "-json", dir)
	ja := parseJSONApply(t, r.out)
	id := imageID(t, host, ref)
	if id == "" {
		t.Fatalf("apply did not build %s on the host:\n%s", ref, r)
	}
	ids = append(ids, id)
	sent := bytesSent(t, ja)
	// The base (echo:v1) is on every node: only the marker's layer travels.
	if sent["node1"] == 0 || sent["node1"] > 1e6 || sent["node2"] != 0 || sent["node3"] != 0 {
		t.Errorf("bytes sent = %v; want node1 only, and only the layer it lacks (under 1 MB)", sent)
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		if got, want := nodeHasImageID(t, c, n, id), n == "node1"; got != want {
			t.Errorf("%s holds the image: %v, want %v", n, got, want)
		}
	}
	if body := waitGet(c.Node(t, "node1").Addr, port, 10*time.Second); !strings.HasPrefix(body, "echo v1") {
		t.Errorf("node1:%d/ answered %q", port, body)
	}
	if !strings.Contains(r.err, "Sending "+ref) || !strings.Contains(r.err, "node1") {
		t.Errorf("stderr shows no transfer:\n%s", r.err)
	}
	if strings.Contains(r.out, "Sending") {
		t.Error("transfer progress went to -json's stdout")
	}

	// A second apply ships nothing.
	r = mustBerth(t, nil, "apply", "-auto-approve", "-json", dir)
	ja = parseJSONApply(t, r.out)
	if imgs := planImages(ja.Plan); len(imgs) > 0 || ja.Result != nil {
		t.Errorf("second apply: images %q, result %v", imgs, ja.Result)
	}

	// node3 holds the image ID under another name only; node2 lacks it.
	other := "berth-e2e/" + project + ":other"
	load(t, host, c.Docker(t, "node3"), ref)
	ctx := context.Background()
	if err := c.Docker(t, "node3").ImageTag(ctx, ref, other); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Docker(t, "node3").ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(builtWebHCL(port, 3, "true")), 0o644)
	r = mustBerth(t, nil, "apply", "-auto-approve", "-json", dir)
	ja = parseJSONApply(t, r.out)
	if got, want := planImages(ja.Plan), []string{"send " + ref + " node2", "tag " + ref + " node3"}; !slices.Equal(got, want) {
		t.Errorf("images = %q, want %q", got, want)
	}
	sent = bytesSent(t, ja)
	if sent["node2"] == 0 || sent["node2"] > 1e6 || sent["node1"] != 0 || sent["node3"] != 0 {
		t.Errorf("bytes sent = %v; want node2 only, the layer it lacks (node1 has the image, node3 its ID)", sent)
	}
	for _, n := range c.Nodes {
		if got := imageID(t, c.Docker(t, n.Name), ref); got != id {
			t.Errorf("%s: %s is %q, want %s", n.Name, ref, got, id)
		}
		if body := waitGet(n.Addr, port, 10*time.Second); !strings.HasPrefix(body, "echo v1") {
			t.Errorf("%s:%d/ answered %q", n.Name, port, body)
		}
	}

	// A changed context is a new tag: a build, a send to every node, a
	// replace of every replica.
	os.WriteFile(filepath.Join(dir, "app", "marker"), []byte(randomHex(16)), 0o644)
	r = mustBerth(t, nil, "plan", "-json", dir)
	plan = nil
	jsonUnmarshal(r.out, &plan)
	imgs = planImages(plan)
	if len(imgs) != 2 || strings.Fields(imgs[0])[1] == ref || !strings.HasSuffix(imgs[1], " node1,node2,node3") {
		t.Errorf("images after a change = %q", imgs)
	}
	for _, a := range plan["actions"].([]any) {
		if k := a.(map[string]any)["kind"]; k != "replace" {
			t.Errorf("action %v, want replace", k)
		}
	}
}

// load copies ref from one engine to another (the test's own transfer).
func load(t *testing.T, from, to *client.Client, ref string) {
	t.Helper()
	ctx := context.Background()
	rc, err := from.ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	resp, err := to.ImageLoad(ctx, rc, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func waitGet(addr string, port int, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		if body := get(addr, port, "/"); body != "" || time.Now().After(deadline) {
			return body
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A transfer cut off midway (the node's sshd killed while it loads a
// ~100 MB image) fails the apply before any container changed, naming the
// node and the image, and leaves no image on that node.
func TestImagesTransferCutOff(t *testing.T) {
	c := testcluster.Require(t)
	// StopSSHD below: hold the cluster from the start, so that killing
	// sshd does not wait for other test processes while the apply runs on.
	c.Exclusive(t)
	project := testcluster.ProjectName(t)
	host := hostDocker(t)
	var ids []string
	removeImagesLater(t, c, func() []string { return ids })
	port := 18790 + int(time.Now().UnixNano()%9)
	dir := c.ConfigDirProject(t, project, map[string]string{
		"main.hcl": webHCL("web", testcluster.ImageV1, port, "") + "\n",
	})
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	before := map[string][]string{}
	for _, n := range c.Nodes {
		before[n.Name] = projectContainersByID(t, c, n.Name, project)
	}

	// The same service, now built: 100 MB of random data on the echo image.
	os.MkdirAll(filepath.Join(dir, "app"), 0o755)
	os.WriteFile(filepath.Join(dir, "app", "Dockerfile"), []byte("FROM "+testcluster.ImageV1+"\nCOPY big /big\n"), 0o644)
	big, _ := os.Create(filepath.Join(dir, "app", "big"))
	io.CopyN(big, rand.Reader, 100<<20)
	big.Close()
	hcl := strings.Replace(webHCL("web", testcluster.ImageV1, port, ""), `image    = "`+testcluster.ImageV1+`"`, `build {
    context = "./app"
  }`, 1)
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644)

	// Capped at 25 MB/s per node the transfer takes about 4 s: the cut
	// comes once node2 has received 10 MB of it, so it lands in its middle
	// however long the local engine takes to start the save.
	rx0 := c.ReceivedBytes(t, "node2")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := execCommand(ctx, testcluster.BuildBerth(t), "apply", "-auto-approve", "-json", dir)
	cmd.Env = append(cmd.Env, "BERTH_TEST_SHIP_RATE=25MB")
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(&out, stdout) }()
	var errText strings.Builder
	sending := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Sending ") {
				once.Do(func() { close(sending) })
			}
		}
	}()
	select {
	case <-sending:
	case <-time.After(3 * time.Minute):
		t.Fatal("no transfer started")
	}
	for deadline := time.Now().Add(time.Minute); c.ReceivedBytes(t, "node2")-rx0 < 10<<20; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node2 received %d bytes in the minute after the transfer began", c.ReceivedBytes(t, "node2")-rx0)
		}
	}
	c.StopSSHD(t, "node2")
	wg.Wait()
	cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	ja := parseJSONApply(t, out.String())
	t.Logf("stderr:\n%s", errText.String())
	if code != 1 || ja.Result == nil {
		t.Fatalf("apply exit %d, result %v\n%s", code, ja.Result, out.String())
	}
	msg, _ := ja.Result["error"].(string)
	for _, want := range []string{"before any container changed", "node node2", "berth/" + project + "-web:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	ref := strings.Fields(planImages(ja.Plan)[0])[1]
	id := imageID(t, host, ref)
	if id == "" {
		t.Fatalf("%s was not built", ref)
	}
	ids = append(ids, id)
	sent := bytesSent(t, ja)
	if sent["node2"] <= 0 || sent["node2"] >= 100<<20 {
		t.Errorf("bytes sent to node2 = %v: the cut did not land midway", sent["node2"])
	}
	if nodeHasImageID(t, c, "node2", id) {
		t.Error("node2 holds the image after the cut")
	}
	for _, n := range c.Nodes {
		if got := projectContainersByID(t, c, n.Name, project); !slices.Equal(got, before[n.Name]) {
			t.Errorf("%s's containers changed:\n  before %q\n  after  %q", n.Name, before[n.Name], got)
		}
	}
}

// projectContainersByID lists "id name image state" of the project's
// containers on a node, sorted.
func projectContainersByID(t *testing.T, c *testcluster.Cluster, node, project string) []string {
	t.Helper()
	list := projectContainers(t, c, node, project)
	cli := c.Docker(t, node)
	var out []string
	for _, l := range list {
		name := strings.Fields(l)[0]
		r, err := cli.ContainerInspect(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.ID[:12]+" "+l)
	}
	slices.Sort(out)
	return out
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
