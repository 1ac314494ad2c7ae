package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/testcluster"
)

// refsPort is db's published port; web publishes none. The range
// 18550-18599 is this file's.
const refsPort = 18550

// refsHCL is db (echo, one replica, in zone dbZone) and web, which gets db's
// address through a reference and runs on node2.
func refsHCL(dbZone string) string {
	return fmt.Sprintf(`
service "db" {
  image             = %q
  stop_grace_period = "1s"
  port {
    target    = 8080
    published = %d
  }
  placement {
    constraint = node.labels.zone == %q
  }
  health {
    tcp      = true
    interval = "200ms"
  }
}

service "web" {
  image             = %q
  stop_grace_period = "1s"
  env = {
    DB = service.db.address
  }
  placement {
    constraint = node.name == "node2"
  }
}
`, testcluster.ImageV1, refsPort, dbZone, testcluster.ImageV1)
}

// webContainer returns the ID and environment of web's replica on node2,
// read from node2's engine.
func webContainer(t *testing.T, c *testcluster.Cluster, project string) (string, map[string]string) {
	t.Helper()
	var id string
	for _, ct := range containersOf(t, c, "node2", project) {
		if ct.Labels["berth.service"] == "web" && ct.State == "running" {
			id = ct.ID
		}
	}
	if id == "" {
		t.Fatalf("web runs on node2: %v", containersOf(t, c, "node2", project))
	}
	info, err := c.Docker(t, "node2").ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range info.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return id, env
}

// fetchFromWeb makes web's container GET http://ADDR/ (the echo image's
// "check" command, run inside it): it exits 0 only on a 2xx answer.
func fetchFromWeb(t *testing.T, c *testcluster.Cluster, id, addr string) (int, string) {
	t.Helper()
	ctx := context.Background()
	cli := c.Docker(t, "node2")
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd: []string{"/echo", "check", "http://" + addr + "/"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Reader)
	resp.Close()
	ins, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ins.ExitCode, string(out)
}

// References between services, end to end: web's env DB = service.db.address
// holds db's node address and published port; moving db to another node
// (its constraint changes) makes the plan replace web with a reason that
// names the field, both values and the move; after apply web's environment
// holds the new address and a request from web reaches db there.
func TestServiceReferences(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": refsHCL("a")})
	project := dir[strings.LastIndexByte(dir, '/')+1:]
	node1, node3 := c.Node(t, "node1").Addr, c.Node(t, "node3").Addr

	mustBerth(t, nil, "apply", "-auto-approve", dir)
	oldAddr := fmt.Sprintf("%s:%d", node1, refsPort)
	id, env := webContainer(t, c, project)
	if env["DB"] != oldAddr {
		t.Fatalf("web's DB = %q, want db's address %q", env["DB"], oldAddr)
	}
	if code, out := fetchFromWeb(t, c, id, env["DB"]); code != 0 {
		t.Fatalf("web cannot reach db at %s: exit %d %s", env["DB"], code, out)
	}

	// db moves from node1 (zone a) to node3 (zone c).
	writeMain(t, dir, refsHCL("c"))
	newAddr := fmt.Sprintf("%s:%d", node3, refsPort)
	reason := fmt.Sprintf(`env.DB: %q -> %q (service.db.address: db.1 moves node1 -> node3)`, oldAddr, newAddr)
	r := mustBerth(t, nil, "plan", dir)
	if !strings.Contains(r.out, "web.1 on node2 (replace") || !strings.Contains(r.out, reason) {
		t.Fatalf("the plan does not replace web with the reason %s:\n%s", reason, r)
	}
	r = mustBerth(t, nil, "plan", "-json", dir)
	var doc struct {
		Actions []struct {
			Service string
			Kind    string
			Reason  string
			Changes []struct{ Field, Old, New, Cause string }
		}
	}
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		t.Fatalf("plan -json: %v\n%s", err, r.out)
	}
	found := false
	for _, a := range doc.Actions {
		if a.Service == "web" && a.Kind == "replace" && a.Reason == reason && len(a.Changes) == 1 &&
			a.Changes[0].Cause == "service.db.address: db.1 moves node1 -> node3" {
			found = true
		}
	}
	if !found {
		t.Fatalf("plan -json has no replace of web with the reason and cause:\n%s", r.out)
	}

	mustBerth(t, nil, "apply", "-auto-approve", dir)
	id, env = webContainer(t, c, project)
	if env["DB"] != newAddr {
		t.Fatalf("after apply web's DB = %q, want %q", env["DB"], newAddr)
	}
	if code, out := fetchFromWeb(t, c, id, env["DB"]); code != 0 {
		t.Fatalf("web cannot reach db at its new address %s: exit %d %s", env["DB"], code, out)
	}
	if body := get(node3, refsPort, "/"); !strings.HasPrefix(body, "echo v1 on ") {
		t.Fatalf("db does not answer at %s: %q", newAddr, body)
	}
	if code, _ := fetchFromWeb(t, c, id, oldAddr); code == 0 {
		t.Fatalf("something still answers at db's old address %s", oldAddr)
	}
	if r := mustBerth(t, nil, "plan", dir); !strings.Contains(r.out, "No changes.") {
		t.Fatalf("the apply did not converge:\n%s", r)
	}
}
