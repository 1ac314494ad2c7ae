package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

func statusFixture() (*config.Config, *planner.Live) {
	cfg := &config.Config{
		Project: config.Project{Name: "shop"},
		Nodes:   []*config.Node{{Name: "node1"}, {Name: "node2"}, {Name: "node3"}},
		Services: []*config.Service{
			{Name: "db", Image: "postgres:16", Replicas: 1},
			{Name: "web", Image: "berth-test/echo:v2", Replicas: 3, Ports: []config.Port{{Target: 8080, Published: 80, Protocol: "tcp"}, {Target: 9090, Protocol: "udp", HostIP: "127.0.0.1"}}},
		},
	}
	lbl := func(svc, replica string) map[string]string {
		return map[string]string{planner.LabelProject: "shop", planner.LabelService: svc, planner.LabelReplica: replica}
	}
	live := &planner.Live{Nodes: map[string]*planner.NodeState{
		"node1": {Name: "node1", Reachable: true, Engine: planner.EngineFacts{Version: "20.10.24"}, Containers: []planner.Container{
			{ID: "aaaaaaaaaaaaaaaaaaaa", Name: "shop-web-1", Labels: lbl("web", "1"), Image: "berth-test/echo:v2", ImageID: "sha256:2", State: "running", Health: "healthy",
				Ports: []planner.PortBinding{{HostIP: "0.0.0.0", HostPort: 80, ContainerPort: 8080, Protocol: "tcp"}, {HostIP: "::", HostPort: 80, ContainerPort: 8080, Protocol: "tcp"}}},
			{ID: "bbbbbbbbbbbbbbbbbbbb", Name: "shop-web-2_berth_old_ap123", Labels: lbl("web", "2"), Image: "berth-test/echo:v1", State: "exited", ExitCode: 137},
			{ID: "cccccccccccccccccccc", Name: "shop-lock-holder", Labels: map[string]string{planner.LabelProject: "shop"}, State: "running"},
		}},
		"node2": {Name: "node2", Error: "node2: connect to 10.231.0.12:22: connection refused (is sshd running there?)"},
		"node3": {Name: "node3", Reachable: true, Containers: []planner.Container{
			{ID: "dddddddddddddddddddd", Name: "shop-cron-1", Labels: lbl("cron", "1"), Image: "busybox:1.36", State: "running",
				Ports: []planner.PortBinding{{HostPort: 9000, ContainerPort: 9000, Protocol: "tcp"}}},
			{ID: "eeeeeeeeeeeeeeeeeeee", Name: "shop-web-3", Labels: lbl("web", "3"), Image: "berth-test/echo:v2", State: "restarting", Health: "unhealthy"},
		}},
	}}
	return cfg, live
}

func TestStatusText(t *testing.T) {
	cfg, live := statusFixture()
	st := buildStatus(cfg, live)
	var b bytes.Buffer
	writeStatusText(&b, st, false)
	want := `Project shop: 2 of 3 nodes reachable

SERVICE   REPLICAS   IMAGE                PORTS
cron      1/-        busybox:1.36         9000->9000/tcp                           not in configuration
db        0/1        postgres:16          -
web       1/3        berth-test/echo:v2   80->8080/tcp, 127.0.0.1:auto->9090/udp

cron
  REPLICA   NODE    CONTAINER     STATE     HEALTH   IMAGE
  1         node3   shop-cron-1   running   -        busybox:1.36

db
  no containers

web
  REPLICA   NODE    CONTAINER                    STATE          HEALTH      IMAGE
  1         node1   shop-web-1                   running        healthy     berth-test/echo:v2
  2         node1   shop-web-2_berth_old_ap123   exited (137)   -           berth-test/echo:v1   left aside by interrupted apply ap123
  3         node3   shop-web-3                   restarting     unhealthy   berth-test/echo:v2

Unreachable nodes (their containers are not shown or counted):
  node2: connect to 10.231.0.12:22: connection refused (is sshd running there?)
`
	got := b.String()
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestStatusJSON(t *testing.T) {
	cfg, live := statusFixture()
	var b bytes.Buffer
	if err := writeStatusJSON(&b, buildStatus(cfg, live)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		FormatVersion string `json:"format_version"`
		Project       string
		Unreachable   int `json:"unreachable_nodes"`
		Services      []struct {
			Name            string
			InConfiguration bool `json:"in_configuration"`
			Desired         int  `json:"desired_replicas"`
			Running         int  `json:"running_replicas"`
			Replicas        []struct {
				Replica   int
				Node      string
				Container string
				State     string
				Health    string
				Aside     string `json:"aside_apply"`
			}
		}
		Nodes []struct {
			Name      string
			Reachable bool
			Error     string
		}
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.FormatVersion != "1.0" || doc.Project != "shop" || doc.Unreachable != 1 || len(doc.Services) != 3 || len(doc.Nodes) != 3 {
		t.Fatalf("doc: %+v", doc)
	}
	web := doc.Services[2]
	if web.Name != "web" || !web.InConfiguration || web.Desired != 3 || web.Running != 1 || len(web.Replicas) != 3 || web.Replicas[1].Aside != "ap123" {
		t.Errorf("web: %+v", web)
	}
	if doc.Services[0].Name != "cron" || doc.Services[0].InConfiguration {
		t.Errorf("cron: %+v", doc.Services[0])
	}
	if n := doc.Nodes[1]; n.Name != "node2" || n.Reachable || !strings.HasPrefix(n.Error, "node2: ") {
		t.Errorf("node2: %+v", n)
	}
}

// status against the local engine and a node nothing listens on: the
// reachable node is shown, the other listed, exit 1.
func TestStatusCommand(t *testing.T) {
	if _, err := os.Stat("/var/run/docker.sock"); err != nil {
		t.Skip("no Docker engine at /var/run/docker.sock")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	home := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(fmt.Sprintf(`project "statustest" {}

node "here" {
  address = "local"
}

service "web" {
  image    = "berth-test/echo:v1"
  replicas = 2
}
`)), 0o644)
	env := []string{"NO_COLOR=1", "HOME=" + home}
	code, out, errOut := runBerth(t, env, "status", dir)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Project statustest: 1 of 1 nodes reachable") || !strings.Contains(out, "web       0/2") {
		t.Errorf("stdout:\n%s", out)
	}

	os.WriteFile(filepath.Join(dir, "nodes.hcl"), []byte(fmt.Sprintf(`node "away" {
  address  = "127.0.0.1"
  port     = %d
  user     = "root"
}
`, port)), 0o644)
	code, out, errOut = runBerth(t, env, "status", "-json", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var doc statusReport
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Unreachable != 1 || len(doc.Nodes) != 2 || doc.Nodes[0].Name != "away" ||
		!strings.HasPrefix(doc.Nodes[0].Error, "away: ") || !strings.Contains(doc.Nodes[0].Error, "connection refused") || !doc.Nodes[1].Reachable {
		t.Errorf("nodes: %+v", doc.Nodes)
	}
}

// A node removed from the configuration but recorded by the last apply is
// listed apart: not counted among the nodes, nor as unreachable.
func TestStatusRemovedNodes(t *testing.T) {
	cfg, live := statusFixture()
	cfg.Nodes = cfg.Nodes[:2]
	live.Nodes["node3"].Removed = true
	live.Nodes["node4"] = &planner.NodeState{Name: "node4", Removed: true, Error: "node4: dial tcp 10.0.0.14:22: i/o timeout"}
	st := buildStatus(cfg, live)
	if st.Unreachable != 1 {
		t.Fatalf("unreachable %d, want 1 (node2; node4 is removed)", st.Unreachable)
	}
	var b bytes.Buffer
	writeStatusText(&b, st, false)
	for _, want := range []string{
		"Project shop: 1 of 2 nodes reachable\n",
		"\nNodes removed from the configuration (the next apply removes the project's containers there):\n" +
			"  node3: 2 container(s) of the project\n  node4: unreachable (node4: dial tcp 10.0.0.14:22: i/o timeout)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status does not say %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "  node4: dial") && strings.Contains(b.String(), "Unreachable nodes (their containers are not shown or counted):\n  node2: connect to 10.231.0.12:22: connection refused (is sshd running there?)\n  node4") {
		t.Errorf("node4 is listed as unreachable:\n%s", b.String())
	}
}
