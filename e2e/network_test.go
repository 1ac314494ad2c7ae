package e2e

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/berth-dev/berth/internal/testcluster"
)

// Ports 18500-18549 are this file's.

// netHCL is db (no published port) and web (published on port), one
// replica each, both on node1.
func netHCL(port int) string {
	return fmt.Sprintf(`
service "db" {
  image = %q
  placement {
    constraint = node.name == "node1"
  }
  health {
    http     = "/healthz"
    port     = 8080
    interval = "200ms"
  }
  update {
    monitor = "0s"
  }
}

service "web" {
  image = %q
  port {
    target    = 8080
    published = %d
  }
  placement {
    constraint = node.name == "node1"
  }
  health {
    http     = "/healthz"
    interval = "200ms"
  }
  update {
    monitor = "0s"
  }
}
`, testcluster.ImageV1, testcluster.ImageV1, port)
}

// execIn runs cmd in a running container and returns its exit code and
// output (stdout and stderr).
func execIn(t *testing.T, cli *client.Client, id string, cmd ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, id[:12], err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, id[:12], err)
	}
	var out bytes.Buffer
	_, err = stdcopy.StdCopy(&out, &out, att.Reader)
	att.Close()
	if err != nil {
		t.Fatalf("exec %v in %s: read output: %v", cmd, id[:12], err)
	}
	ins, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil || ins.Running {
		t.Fatalf("exec %v in %s: inspect: %+v %v", cmd, id[:12], ins, err)
	}
	return ins.ExitCode, out.String()
}

// containerOf returns the inspect of a project's replica on node.
func containerOf(t *testing.T, cli *client.Client, name string) container.InspectResponse {
	t.Helper()
	r, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return r
}

func networkNames(r container.InspectResponse) []string {
	var out []string
	for n := range r.NetworkSettings.Networks {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func projectNetworks(t *testing.T, cli *client.Client, project string) []string {
	t.Helper()
	ns, err := cli.NetworkList(context.Background(), network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", testcluster.ProjectLabel+"="+project))})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

// The project network end to end: web resolves db by its service and
// replica names on node1; a container of another berth project and a bare
// container on the default bridge on node1 cannot connect to db's address;
// a replica taken off the network by hand shows as drift in the plan and
// is repaired in place by apply; destroy removes the network.
func TestNetworkProject(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": netHCL(18500)})
	netName := "berth-" + project
	r := mustBerth(t, nil, "apply", "-auto-approve", dir)
	if !strings.Contains(r.out, "+   network "+netName+" on node1: a replica of the project runs there") {
		t.Errorf("apply output does not show the network:\n%s", r.out)
	}

	cli := c.Docker(t, "node1")
	for _, n := range []string{"node1", "node2", "node3"} {
		got := projectNetworks(t, c.Docker(t, n), project)
		if want := map[bool][]string{true: {netName}}[n == "node1"]; !slices.Equal(got, want) {
			t.Errorf("%s: project networks %v, want %v", n, got, want)
		}
	}
	db := containerOf(t, cli, project+"-db-1")
	web := containerOf(t, cli, project+"-web-1")
	for _, ct := range []container.InspectResponse{db, web} {
		if got := networkNames(ct); !slices.Equal(got, []string{netName}) {
			t.Errorf("%s is on %v, want only %s", ct.Name, got, netName)
		}
	}
	dbIP := db.NetworkSettings.Networks[netName].IPAddress
	if dbIP == "" {
		t.Fatalf("db has no address on %s", netName)
	}

	// Service discovery: by service name and by replica name, and the
	// address itself (the control for the isolation checks below).
	for _, u := range []string{"http://db:8080/healthz", "http://db-1:8080/healthz", "http://" + dbIP + ":8080/healthz"} {
		if code, out := execIn(t, cli, web.ID, "/echo", "check", u); code != 0 {
			t.Errorf("web cannot reach %s: exit %d: %s", u, code, out)
		}
	}
	if code, _ := execIn(t, cli, web.ID, "/echo", "check", "http://nosuchservice:8080/healthz"); code == 0 {
		t.Errorf("a name that is no service resolved")
	}

	// Another berth project on node1, and a bare container on the default
	// bridge: neither reaches db's address.
	other := testcluster.ProjectName(t)
	odir := c.ConfigDirProject(t, other, map[string]string{"main.hcl": fmt.Sprintf(`
service "probe" {
  image = %q
  placement {
    constraint = node.name == "node1"
  }
}
`, testcluster.ImageV1)})
	mustBerth(t, nil, "apply", "-auto-approve", odir)
	probe := containerOf(t, cli, other+"-probe-1")
	bare, err := cli.ContainerCreate(context.Background(), &container.Config{Image: testcluster.ImageV1}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ContainerRemove(context.Background(), bare.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(context.Background(), bare.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for who, id := range map[string]string{"a container of another project": probe.ID, "a bare container on the default bridge": bare.ID} {
		code, out := execIn(t, cli, id, "/echo", "check", "http://"+dbIP+":8080/healthz")
		if code == 0 {
			t.Errorf("%s reached db at %s: %s", who, dbIP, out)
		}
		t.Logf("%s -> %s: exit %d: %s", who, dbIP, code, strings.TrimSpace(out))
		code, out = execIn(t, cli, id, "/echo", "check", "http://db:8080/healthz")
		if code == 0 {
			t.Errorf("%s reached db by name", who)
		}
		t.Logf("%s -> db: exit %d: %s", who, code, strings.TrimSpace(out))
	}

	// Drift: web taken off the project network by hand, put on the
	// default bridge.
	ctx := context.Background()
	if err := cli.NetworkDisconnect(ctx, netName, web.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := cli.NetworkConnect(ctx, "bridge", web.ID, nil); err != nil {
		t.Fatal(err)
	}
	r = berth(t, nil, "plan", "-detailed-exitcode", dir)
	if r.code != 2 || !strings.Contains(r.out, "~   web.1 on node1 (update in place) [drift]: drift: the container is on bridge instead of network "+netName) ||
		!strings.Contains(r.out, `~ networks: ["bridge"] -> ["`+netName+`"]`) {
		t.Fatalf("plan does not show the network drift:\n%s", r)
	}
	mustBerth(t, nil, "apply", "-auto-approve", dir)
	repaired := containerOf(t, cli, project+"-web-1")
	if repaired.ID != web.ID {
		t.Errorf("web was replaced (%s -> %s), not repaired in place", web.ID[:12], repaired.ID[:12])
	}
	if got := networkNames(repaired); !slices.Equal(got, []string{netName}) {
		t.Errorf("after the repair web is on %v, want only %s", got, netName)
	}
	if code, out := execIn(t, cli, web.ID, "/echo", "check", "http://db:8080/healthz"); code != 0 {
		t.Errorf("after the repair web cannot reach db by name: %s", out)
	}
	if got := get(c.Node(t, "node1").Addr, 18500, "/"); !strings.HasPrefix(got, "echo v1") {
		t.Errorf("after the repair web's published port answers %q", got)
	}
	if r := berth(t, nil, "plan", "-detailed-exitcode", dir); r.code != 0 {
		t.Errorf("plan after the repair is not empty:\n%s", r)
	}

	// Destroy removes the network once its containers are gone.
	r = mustBerth(t, nil, "destroy", "-auto-approve", dir)
	if !strings.Contains(r.out, "-   network "+netName+" on node1: the project is destroyed") {
		t.Errorf("destroy output does not show the network:\n%s", r.out)
	}
	if got := projectNetworks(t, cli, project); len(got) != 0 {
		t.Errorf("networks left after destroy: %v", got)
	}
}
