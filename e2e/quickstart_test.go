package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/internal/testcluster"
)

// readmeFirstCommand returns the content of README.md's first ```sh block.
func readmeFirstCommand(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\n```sh\n(.*?)\n```\n").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no ```sh block")
	}
	return strings.TrimSpace(string(m[1]))
}

// The README's quickstart, exactly as the README says it (its first ```sh
// block, read from README.md so that this test breaks when the README
// drifts), against this machine's own Docker engine (examples/quickstart's
// node is address = "local"): it deploys, prints the URL, the URL answers;
// berth destroy removes every container of the project; the test removes
// the image it built and the server binary the command left in the
// worktree.
func TestReadmeQuickstart(t *testing.T) {
	c := testcluster.Require(t)
	// examples/quickstart is project "quickstart" on host port 8080 of the
	// local engine, which the test cluster's tests also use (they build
	// images there): hold the cluster lock exclusively meanwhile.
	c.Exclusive(t)
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmdline := readmeFirstCommand(t, root)
	if !strings.Contains(cmdline, "examples/quickstart") || !strings.Contains(cmdline, "apply") {
		t.Fatalf("README's first command does not apply examples/quickstart: %q", cmdline)
	}
	host := hostDocker(t)
	ctx := context.Background()
	if _, err := host.Ping(ctx); err != nil {
		t.Fatalf("the local Docker engine does not answer: %v", err)
	}
	project := filters.NewArgs(filters.Arg("label", "berth.project=quickstart"))
	if cs := quickstartContainers(t, host, project); len(cs) > 0 {
		t.Fatalf("the local engine already runs project quickstart (%v): destroy it first (berth destroy examples/quickstart)", cs)
	}
	imagesBefore := quickstartImages(t, host)
	server := filepath.Join(root, "examples", "quickstart", "app", "server")
	// A binary left by someone who ran the quickstart by hand is theirs
	// (the command rebuilds it from the same source); one the test builds
	// is removed.
	_, err = os.Stat(server)
	serverBefore := err == nil
	t.Cleanup(func() {
		// Whatever happened: no container, no image of the test's, no binary.
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, ct := range quickstartContainers(t, host, project) {
			id := strings.Fields(ct)[0]
			if err := host.ContainerRemove(cctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Errorf("remove the quickstart container %s: %v", ct, err)
			}
		}
		for id := range quickstartImages(t, host) {
			if !imagesBefore[id] {
				if _, err := host.ImageRemove(cctx, id, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
					t.Errorf("remove the quickstart image %s: %v", id, err)
				}
			}
		}
		if serverBefore {
			return
		}
		if err := os.Remove(server); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove %s: %v", server, err)
		}
	})

	out := shellIn(t, root, 10*time.Minute, cmdline)
	url := regexp.MustCompile(`(?m)^  app: (http://\S+/)  \(node local, port 8080\)$`).FindStringSubmatch(out)
	if url == nil {
		t.Fatalf("the quickstart printed no URL for app:\n%s", out)
	}
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; {
		body = getURL(url[1])
		if body != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.HasPrefix(body, "Hello from berth's quickstart") {
		t.Fatalf("%s answered %q", url[1], body)
	}
	if cs := quickstartContainers(t, host, project); len(cs) != 1 {
		t.Fatalf("want one quickstart container on the local engine, got %v", cs)
	}
	if len(quickstartImages(t, host)) == 0 {
		t.Fatal("no berth/quickstart-app image on the local engine after the quickstart")
	}

	bin := testcluster.BuildBerth(t)
	out = shellIn(t, root, 5*time.Minute, bin+" destroy -auto-approve examples/quickstart")
	if !strings.Contains(out, "Destroy complete!") {
		t.Errorf("destroy said:\n%s", out)
	}
	if cs := quickstartContainers(t, host, project); len(cs) != 0 {
		t.Errorf("containers of project quickstart left on the local engine after destroy: %v", cs)
	}
	if body := getURL(url[1]); body != "" {
		t.Errorf("%s still answers after destroy: %q", url[1], body)
	}
}

// shellIn runs cmdline with sh -c in dir and returns its combined output,
// failing the test unless it exits 0 within timeout.
func shellIn(t *testing.T, dir string, timeout time.Duration, cmdline string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	t.Logf("sh -c %q -> %v", cmdline, err)
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b.String())
	}
	return b.String()
}

// quickstartContainers lists "ID NAMES" of the containers (any state) on
// the local engine that match f.
func quickstartContainers(t *testing.T, host *client.Client, f filters.Args) []string {
	t.Helper()
	list, err := host.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID[:12]+" "+strings.Join(s.Names, ","))
	}
	return ids
}

// quickstartImages returns the IDs of the local engine's berth/quickstart-app
// images.
func quickstartImages(t *testing.T, host *client.Client) map[string]bool {
	t.Helper()
	list, err := host.ImageList(context.Background(), image.ListOptions{
		Filters: filters.NewArgs(filters.Arg("reference", "berth/quickstart-app")),
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, im := range list {
		ids[im.ID] = true
	}
	return ids
}

// getURL fetches url, returning the body of a 200 answer or "".
func getURL(url string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}
