package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

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

// importCase is one Compose project of internal/importcompose/testdata, as
// the importer's golden test reads it, with what the test cluster needs.
type importCase struct {
	dir      string
	files    []string
	profiles []string
	vars     []string // -var NAME=VALUE for the variables without a default
	// adjust, if set, changes what the test cluster cannot run as imported;
	// each change says why.
	adjust func(t *testing.T, services map[string]*hclwrite.Body)
}

var importCases = []importCase{
	{dir: "basic", files: []string{"compose.yml"}},
	// The build block goes (the test images are built by the cluster's
	// scripts, not from this project's context), so GIT_SHA is unused; it is
	// set all the same since the variable has no default.
	{dir: "build", files: []string{"compose.yml"}, vars: []string{"GIT_SHA=abc123"}},
	{dir: "health-update", files: []string{"compose.yml"}},
	{dir: "interpolation", files: []string{"compose.yml"},
		vars: []string{"DB_PASSWORD=pw", "API_TOKEN=tok"}},
	{dir: "multi-file", files: []string{"compose.yml", "compose.prod.yml"}},
	{dir: "placement", files: []string{"compose.yml"},
		// No node of the cluster has role "edge": the web nodes stand in.
		adjust: func(t *testing.T, s map[string]*hclwrite.Body) {
			setExpr(t, block(t, s["edge"], "placement"), "constraint",
				`node.labels.role == "web" && lookup(node.labels, "com.example.tier", "") != "batch"`)
		}},
	{dir: "profiles", files: []string{"compose.yml"}},
	{dir: "profiles-debug", files: []string{"../profiles/compose.yml"}, profiles: []string{"debug"}},
	{dir: "secrets", files: []string{"compose.yml"},
		vars: []string{"PGDATA=/data", "POSTGRES_PASSWORD=pw", "api_key=key", "db_password=pw"}},
	{dir: "swarm-stack", files: []string{"stack.yml"},
		// Only node1 is in zone a, and 4 replicas at most 2 per node need
		// two nodes: the web nodes (zones a and b) stand in. No node is
		// called cache-host: node3 stands in. berth reserves the CPU limit,
		// and the cluster's nodes have 2 CPUs each (shared with the other
		// projects of this test): 2 replicas of 1.5 CPUs do not fit on one,
		// so the limit becomes 0.25 (the stack's reservation). The update's
		// monitor of 30s watches each new replica that long before the apply
		// goes on: 1s keeps the test short.
		adjust: func(t *testing.T, s map[string]*hclwrite.Body) {
			block(t, s["app"], "resources").SetAttributeValue("cpus", cty.NumberFloatVal(0.25))
			block(t, s["app"], "update").SetAttributeValue("monitor", cty.StringVal("1s"))
			setExpr(t, block(t, s["app"], "placement"), "constraint",
				`node.labels.role == "web" && node.arch == "amd64"`)
			setExpr(t, block(t, s["cache"], "placement"), "constraint", `node.name == "node3"`)
		}},
}

// berth import compose on every Compose project of the importer's golden
// tests: the output, with images swapped to the test image (a build block
// replaced by it), health checks to the image's own, published ports moved
// into this test's range and the placeholder nodes replaced by the
// cluster's, passes fmt -check and validate, plans changes, applies, plans
// no changes after, and destroys. The projects run in parallel.
func TestImportComposeFiles(t *testing.T) {
	c := testcluster.Require(t)
	const firstPort, portsPerCase = 18270, 3
	if len(importCases)*portsPerCase > 30 {
		t.Fatal("the cases need more than the test's 30 ports (18270-18299)")
	}
	for i, tc := range importCases {
		t.Run(tc.dir, func(t *testing.T) {
			t.Parallel()
			project := testcluster.ProjectName(t)
			t.Cleanup(func() { c.RemoveProject(t, project) })
			src, err := filepath.Abs(filepath.Join("..", "internal", "importcompose", "testdata", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "imported")
			args := []string{"import", "compose", "-o", dir}
			for _, p := range tc.profiles {
				args = append(args, "-profile", p)
			}
			for _, f := range tc.files {
				args = append(args, filepath.Join(src, f))
			}
			mustBerth(t, nil, args...)
			main := filepath.Join(dir, "main.hcl")
			fillNodes(t, c, main)
			ports := forCluster(t, main, project, firstPort+i*portsPerCase, portsPerCase, tc.adjust)

			var vars []string
			for _, v := range tc.vars {
				vars = append(vars, "-var", v)
			}
			with := func(cmd ...string) []string { return append(append(cmd, vars...), dir) }
			mustBerth(t, nil, "fmt", "-check", dir)
			mustBerth(t, nil, with("validate")...)
			if r := berth(t, nil, with("plan", "-detailed-exitcode")...); r.code != 2 {
				t.Fatalf("plan of the imported configuration: want exit 2:\n%s", r)
			}
			mustBerth(t, nil, with("apply", "-auto-approve")...)
			running := 0
			for _, n := range c.Nodes {
				for _, ct := range projectContainers(t, c, n.Name, project) {
					if !strings.HasSuffix(ct, " running") {
						t.Errorf("%s: %s is not running", n.Name, ct)
					}
					running++
				}
			}
			if running == 0 {
				t.Errorf("apply started no container")
			}
			if ports > 0 {
				answered := false
				for _, n := range c.Nodes {
					for p := firstPort + i*portsPerCase; p < firstPort+i*portsPerCase+ports; p++ {
						answered = answered || strings.HasPrefix(get(n.Addr, p, "/"), "echo v1 on ")
					}
				}
				if !answered {
					t.Errorf("no published port of the project answers")
				}
			}
			if r := berth(t, nil, with("plan", "-detailed-exitcode")...); r.code != 0 {
				t.Errorf("after the apply: want no changes:\n%s", r)
			}
			mustBerth(t, nil, with("destroy", "-auto-approve")...)
			for _, n := range c.Nodes {
				if cs := projectContainers(t, c, n.Name, project); len(cs) != 0 {
					t.Errorf("%s: destroy left %q", n.Name, cs)
				}
			}
		})
	}
}

// forCluster rewrites an imported main.hcl for the test cluster: the
// project is renamed; every service runs the test image (a build block and a
// pull policy go: the image is on the nodes already, no registry is
// reachable) with the image's own entrypoint and command and health check;
// published ports are renumbered from first on (at most n of them, each
// targeting the image's port 8080); with an ingress port the project gets
// the cluster's ingress proxy image; then adjust runs. It returns the number
// of published ports.
func forCluster(t *testing.T, path, project string, first, n int, adjust func(*testing.T, map[string]*hclwrite.Body)) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclwrite.ParseConfig(b, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("the imported configuration does not parse: %s", diags)
	}
	services := map[string]*hclwrite.Body{}
	ports, ingress := 0, false
	var proj *hclwrite.Body
	for _, blk := range f.Body().Blocks() {
		switch blk.Type() {
		case "project":
			blk.SetLabels([]string{project})
			proj = blk.Body()
		case "service":
			s := blk.Body()
			services[blk.Labels()[0]] = s
			s.SetAttributeValue("image", cty.StringVal(testcluster.ImageV1))
			for _, a := range []string{"pull", "command", "entrypoint"} {
				s.RemoveAttribute(a)
			}
			for _, sub := range s.Blocks() {
				switch sub.Type() {
				case "build":
					s.RemoveBlock(sub)
				case "health":
					sub.Body().SetAttributeValue("cmd", cty.ListVal([]cty.Value{cty.StringVal("/echo"), cty.StringVal("check")}))
					sub.Body().SetAttributeValue("interval", cty.StringVal("1s"))
				case "port":
					if ports == n {
						t.Fatalf("more than %d published ports", n)
					}
					sub.Body().SetAttributeValue("published", cty.NumberIntVal(int64(first+ports)))
					sub.Body().SetAttributeValue("target", cty.NumberIntVal(8080))
					if a := sub.Body().GetAttribute("mode"); a != nil && strings.Contains(string(a.Expr().BuildTokens(nil).Bytes()), "ingress") {
						ingress = true
					}
					ports++
				}
			}
		}
	}
	if ingress {
		// The proxies run the cluster's Caddy image: no registry is
		// reachable from the nodes for berth's default one.
		ib := proj.AppendNewBlock("ingress", nil).Body()
		ib.SetAttributeValue("image", cty.StringVal(ingressImage))
		ib.SetAttributeValue("nodes", cty.True)
	}
	if adjust != nil {
		adjust(t, services)
	}
	if err := os.WriteFile(path, hclwrite.Format(f.Bytes()), 0o644); err != nil {
		t.Fatal(err)
	}
	return ports
}

// block returns body's first nested block of type typ.
func block(t *testing.T, body *hclwrite.Body, typ string) *hclwrite.Body {
	t.Helper()
	if body == nil {
		t.Fatalf("no such service")
	}
	blk := body.FirstMatchingBlock(typ, nil)
	if blk == nil {
		t.Fatalf("no %s block", typ)
	}
	return blk.Body()
}

// setExpr sets body's attribute name to the HCL expression src.
func setExpr(t *testing.T, body *hclwrite.Body, name, src string) {
	t.Helper()
	f, diags := hclwrite.ParseConfig([]byte("x = "+src+"\n"), "expr", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", src, diags)
	}
	body.SetAttributeRaw(name, f.Body().GetAttribute("x").Expr().BuildTokens(nil))
}
