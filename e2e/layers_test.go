package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/internal/testcluster"
)

// Layer-aware sends (issue 18): an image whose only change is its small top
// layer travels as that layer (and the manifest and config), not as the
// whole image.

// buildLayered builds ref on the host engine: the echo server, a big file
// of random bytes, then a small file with marker, each its own layer.
func buildLayered(t *testing.T, cli *client.Client, ref string, big []byte, marker string) string {
	t.Helper()
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	files := []struct {
		name string
		data []byte
	}{
		{"Dockerfile", []byte("FROM " + testcluster.ImageV1 + "\nCOPY big /big\nCOPY small /small\n")},
		{"big", big},
		{"small", []byte(marker)},
	}
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data))})
		tw.Write(f.data)
	}
	tw.Close()
	resp, err := cli.ImageBuild(context.Background(), &ctxTar, build.ImageBuildOptions{Dockerfile: "Dockerfile", Tags: []string{ref}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	resp.Body.Close()
	id := imageID(t, cli, ref)
	if id == "" {
		t.Fatalf("build of %s failed:\n%s", ref, out.String())
	}
	return id
}

func layeredHCL(ref string, port int) string {
	return fmt.Sprintf(`
service "web" {
  image    = %q
  replicas = 3
  port {
    target    = 8080
    published = %d
  }
  placement {
    spread       = node.labels.zone
    max_per_node = 1
  }
  health {
    http     = "/healthz"
    interval = "200ms"
  }
  update {
    monitor = "300ms"
  }
}
`, ref, port)
}

func TestImagesLayerAwareSend(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	host := hostDocker(t)
	var ids []string
	removeImagesLater(t, c, func() []string { return ids })

	const bigSize = 40 << 20
	big := make([]byte, bigSize)
	rand.Read(big)
	repo := "berth-e2e/" + project
	v1 := buildLayered(t, host, repo+":v1", big, "v1 "+randomHex(8))
	v2 := buildLayered(t, host, repo+":v2", big, "v2 "+randomHex(8))
	ids = append(ids, v2, v1) // v2 first: it is v1's sibling, not its child
	if v1 == v2 {
		t.Fatal("v1 and v2 are the same image")
	}
	const port = 18450
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": layeredHCL(repo+":v1", port)})

	// v1: the nodes hold the echo server's layer already (the cluster's
	// test image), so the big layer and the marker travel.
	r := mustBerth(t, nil, "plan", dir)
	if !strings.Contains(r.out, "to node1, node2, node3 (2 of 3 layers)") {
		t.Errorf("plan of v1 does not send 2 of 3 layers to every node:\n%s", r.out)
	}
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	for _, n := range c.Nodes {
		if !nodeHasImageID(t, c, n.Name, v1) {
			t.Fatalf("%s lacks v1 after its apply", n.Name)
		}
	}

	// v2 changes only the small layer: the plan says so, per node...
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(layeredHCL(repo+":v2", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = mustBerth(t, nil, "plan", dir)
	t.Logf("plan of v2:\n%s", r.out)
	if !strings.Contains(r.out, "to node1, node2, node3 (1 of 3 layers)") {
		t.Errorf("plan of v2 does not send 1 of 3 layers to every node:\n%s", r.out)
	}
	var plan map[string]any
	r = mustBerth(t, nil, "plan", "-json", dir)
	if err := jsonUnmarshal(r.out, &plan); err != nil {
		t.Fatal(err)
	}
	for _, x := range plan["images"].([]any) {
		for _, tr := range x.(map[string]any)["transfers"].([]any) {
			m := tr.(map[string]any)
			if m["path"] != "layers" || m["layers"].(float64) != 1 || m["of"].(float64) != 3 || m["bytes"].(float64) > 1e5 {
				t.Errorf("plan -json transfer %v; want the top layer only", m)
			}
		}
	}

	// ... and only that travels: the nodes receive far less than the big
	// layer (counted on each node's interface: the whole apply, SSH and all).
	before := map[string]int64{}
	for _, n := range c.Nodes {
		before[n.Name] = c.ReceivedBytes(t, n.Name)
	}
	r = mustBerth(t, nil, "apply", "-auto-approve", "-json", dir)
	ja := parseJSONApply(t, r.out)
	sent := bytesSent(t, ja)
	for _, n := range c.Nodes {
		got := c.ReceivedBytes(t, n.Name) - before[n.Name]
		t.Logf("%s received %d bytes for v2 (berth sent %.0f bytes of image stream)", n.Name, got, sent[n.Name])
		if got > bigSize/20 {
			t.Errorf("%s received %d bytes for v2, the big layer is %d", n.Name, got, bigSize)
		}
		if sent[n.Name] == 0 || sent[n.Name] > 1e5 {
			t.Errorf("berth sent %.0f bytes of image to %s", sent[n.Name], n.Name)
		}
		if !nodeHasImageID(t, c, n.Name, v2) {
			t.Errorf("%s lacks v2", n.Name)
		}
	}
	t.Logf("apply of v2, stderr:\n%s", r.err)
	if !strings.Contains(r.err, "1 of 3 layers") {
		t.Errorf("apply's output does not say what travelled:\n%s", r.err)
	}

	// The containers run v2, and answer.
	for _, n := range c.Nodes {
		cli := c.Docker(t, n.Name)
		for _, l := range projectContainers(t, c, n.Name, project) {
			ci, err := cli.ContainerInspect(context.Background(), strings.Fields(l)[0])
			if err != nil {
				t.Fatal(err)
			}
			if ci.Image != v2 || !ci.State.Running {
				t.Errorf("%s: container %s runs %s (running %v), want v2 %s", n.Name, ci.Name, ci.Image, ci.State.Running, v2)
			}
		}
		if body := waitGet(n.Addr, port, 0); body == "" {
			t.Errorf("%s:%d answers nothing", n.Name, port)
		}
	}
}
