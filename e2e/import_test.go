package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/berth-dev/berth/internal/testcluster"
)

// berth import compose on a small Compose file (the test image, an
// interpolation with a default, a published port, a health check,
// placement constraints on node labels, max_replicas_per_node,
// update_config, depends_on): the output passes fmt -check and validate
// once its placeholder node blocks are replaced by the cluster's nodes;
// plan exits 2, apply brings the service up on the web nodes (answering
// with the interpolation's default), the worker on the db node; a second
// plan has no changes; destroy removes every container.
func TestImportComposeApply(t *testing.T) {
	c := testcluster.Require(t)
	const port = 18260
	project := testcluster.ProjectName(t)
	t.Cleanup(func() { c.RemoveProject(t, project) })
	src := t.TempDir()
	compose := filepath.Join(src, "compose.yml")
	if err := os.WriteFile(compose, fmt.Appendf(nil, `name: %s
services:
  web:
    image: %s
    environment:
      NODE: ${NODE_NAME:-compose}
    ports:
      - "%d:8080"
    healthcheck:
      test: ["CMD", "/echo", "check"]
      interval: 1s
      start_period: 5s
    deploy:
      replicas: 2
      placement:
        constraints: ["node.labels.role == web"]
        max_replicas_per_node: 1
      update_config:
        parallelism: 1
    depends_on: [worker]
  worker:
    image: %s
    environment:
      PORT: "9000"
    deploy:
      placement:
        constraints: ["node.labels.role == db"]
`, project, testcluster.ImageV1, port, testcluster.ImageV1), 0o644); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "imported")
	r := mustBerth(t, nil, "import", "compose", "-o", dir, compose)
	if !strings.Contains(r.out+r.err, "(0 warnings)") {
		t.Errorf("import: want no warnings:\n%s", r)
	}
	fillNodes(t, c, filepath.Join(dir, "main.hcl"))

	mustBerth(t, nil, "fmt", "-check", dir)
	mustBerth(t, nil, "validate", dir)
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 2 || !strings.Contains(r.out, "Plan: 3 to add") {
		t.Fatalf("plan of the imported configuration: want exit 2 and 3 to add:\n%s", r)
	}
	mustBerth(t, nil, "apply", "-auto-approve", dir)

	for _, n := range c.Nodes {
		body := get(n.Addr, port, "/")
		switch n.Name {
		case "node1", "node2": // role web
			if body != "echo v1 on compose\n" {
				t.Errorf("%s:%d answers %q, want the web service with NODE from the interpolation's default", n.Name, port, body)
			}
		default:
			if body != "" {
				t.Errorf("%s:%d answers %q; web is placed on the web nodes only", n.Name, port, body)
			}
		}
		// One container on each node: web, web, worker.
		cs := projectContainers(t, c, n.Name, project)
		if len(cs) != 1 || !strings.HasSuffix(cs[0], " "+testcluster.ImageV1+" running") {
			t.Errorf("%s: the project's containers are %q, want one running %s", n.Name, cs, testcluster.ImageV1)
		}
		if n.Name == "node3" && len(cs) == 1 && !strings.HasPrefix(cs[0], project+"-worker-") {
			t.Errorf("node3 runs %q, want the worker", cs[0])
		}
	}
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 0 {
		t.Errorf("after the apply: want no changes:\n%s", r)
	}

	mustBerth(t, nil, "destroy", "-auto-approve", dir)
	for _, n := range c.Nodes {
		if cs := projectContainers(t, c, n.Name, project); len(cs) != 0 {
			t.Errorf("%s: destroy left %q", n.Name, cs)
		}
	}
}

// fillNodes replaces the import's placeholder node blocks with the test
// cluster's: they go, and the cluster's nodes.hcl comes alongside.
func fillNodes(t *testing.T, c *testcluster.Cluster, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclwrite.ParseConfig(b, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("the imported configuration does not parse: %s", diags)
	}
	placeholders := 0
	for _, blk := range f.Body().Blocks() {
		if blk.Type() == "node" {
			f.Body().RemoveBlock(blk)
			placeholders++
		}
	}
	if placeholders == 0 {
		t.Fatalf("the imported configuration has no placeholder node block:\n%s", b)
	}
	if err := os.WriteFile(path, hclwrite.Format(f.Bytes()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "nodes.hcl"), []byte(c.NodesHCL()), 0o644); err != nil {
		t.Fatal(err)
	}
}
