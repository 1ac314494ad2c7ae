package executor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/executor/internal/sshdtest"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/internal/testcluster"
	"github.com/berth-dev/berth/planner"
)

func TestGatherWithFakes(t *testing.T) {
	ok := fake.NewNode("a")
	ok.AddImage("berth-test/echo:v1")
	ok.AddHostPort(planner.HostPort{Protocol: "tcp", IP: "0.0.0.0", Port: 80})
	own := ok.AddContainer(planner.Container{Name: "p-web-1", Labels: map[string]string{planner.LabelProject: "p", planner.LabelService: "web"}})
	foreign := ok.AddForeign(planner.Container{Name: "nginx", Ports: []planner.PortBinding{{HostPort: 443, ContainerPort: 443, Protocol: "tcp"}}})
	ok.AddForeign(planner.Container{Name: "quiet"}) // no ports, another name space: not reported
	ok.CreateVolume(context.Background(), "p-lock", map[string]string{planner.LabelProject: "p", planner.LabelKind: "lock"})
	ok.CreateVolume(context.Background(), "other", map[string]string{planner.LabelProject: "q"})
	ok.CreateVolume(context.Background(), "pgdata", nil)                 // no berth label: kept, matched by name
	ok.CreateVolume(context.Background(), strings.Repeat("ab", 32), nil) // anonymous: left out

	// Each part of a node's gather failing makes the node unreachable:
	// never "no containers".
	var broken []*fake.Node
	for _, m := range []string{"Info", "Containers", "Images", "HostPorts", "Volumes"} {
		f := fake.NewNode("broken-" + strings.ToLower(m))
		f.AddContainer(planner.Container{Name: "p-web-2", Labels: map[string]string{planner.LabelProject: "p"}})
		f.SetError(m, errors.New("connection to 10.0.0.9:22 lost: no answer to keep-alive for 6s"))
		broken = append(broken, f)
	}
	nodes := map[string]Node{"a": ok}
	for _, f := range broken {
		nodes[f.Name()] = f
	}
	sess := NewSession("p", nodes)
	live := sess.Gather(context.Background())
	if len(live.Nodes) != 1+len(broken) {
		t.Fatalf("%d nodes in the result", len(live.Nodes))
	}
	a := live.Nodes["a"]
	if !a.Reachable || len(a.Containers) != 1 || a.Containers[0].ID != own.ID || len(a.Foreign) != 1 || a.Foreign[0].ID != foreign.ID ||
		len(a.Images) != 1 || len(a.Volumes) != 2 || a.Volumes[0].Name != "p-lock" || a.Volumes[1].Name != "pgdata" || a.Engine.Version == "" {
		t.Errorf("node a: %+v", a)
	}
	// HostPorts: the added one and the foreign container's published port.
	if len(a.HostPorts) != 2 {
		t.Errorf("host ports: %+v", a.HostPorts)
	}
	for _, f := range broken {
		st := live.Nodes[f.Name()]
		if st.Reachable || st.Containers != nil || !strings.HasPrefix(st.Error, f.Name()+": ") || !strings.Contains(st.Error, "keep-alive") {
			t.Errorf("%s: %+v", f.Name(), st)
		}
	}
}

func TestSessionNodeErrors(t *testing.T) {
	sess := NewSession("p", map[string]Node{"a": fake.NewNode("a")})
	if _, err := sess.Node("a"); err != nil {
		t.Fatal(err)
	}
	_, err := sess.Node("zz")
	var ne *NodeError
	if !errors.As(err, &ne) || !strings.HasPrefix(err.Error(), "zz: ") {
		t.Errorf("unknown node: %v", err)
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: every gather fails, and is reported as such.
	live := sess.Gather(context.Background())
	if live.Nodes["a"].Reachable {
		t.Error("a closed node gathered as reachable")
	}
}

// A node that never connected appears in Gather with its connection error.
func TestGatherUnconnectedNode(t *testing.T) {
	cfg := sshdtest.Config("p", &config.Node{Name: "gone", Address: "127.0.0.1", Port: sshdtest.FreePort(t), User: "root"})
	sess := Open(context.Background(), cfg, Options{SSH: transport.Options{HomeDir: t.TempDir(), Environ: []string{}, NoTTY: true}})
	defer sess.Close()
	live := sess.Gather(context.Background())
	st := live.Nodes["gone"]
	if st == nil || st.Reachable || !strings.HasPrefix(st.Error, "gone: connect to ") {
		t.Errorf("%+v", st)
	}
}

// Other berth projects' containers are reported with their CPU and memory
// reservations (read by inspecting them: the list has none), the running
// ones only; unlabelled containers without ports are not reported at all.
func TestGatherForeignReservations(t *testing.T) {
	f := fake.NewNode("a")
	other := func(name, state string) planner.Container {
		return f.AddForeign(planner.Container{Name: name, State: state, NanoCPUs: 15e8, MemoryBytes: 3 << 30,
			Labels: map[string]string{planner.LabelProject: "q", planner.LabelService: "db"}})
	}
	run := other("q-db-1", "running")
	stopped := other("q-db-2", "exited")
	f.AddForeign(planner.Container{Name: "quiet", NanoCPUs: 1e9, MemoryBytes: 1 << 30}) // unlabelled, no ports
	f.ResetCalls()
	gather := func() *planner.NodeState {
		return NewSession("p", map[string]Node{"a": f}).Gather(context.Background()).Nodes["a"]
	}
	st := gather()
	if !st.Reachable {
		t.Fatal(st.Error)
	}
	got := map[string]planner.Container{}
	for _, c := range st.Foreign {
		got[c.Name] = c
	}
	if len(got) != 2 {
		t.Fatalf("foreign: %+v", st.Foreign)
	}
	if c := got[run.Name]; c.ID != run.ID || c.NanoCPUs != 15e8 || c.MemoryBytes != 3<<30 || c.State != "running" {
		t.Errorf("running container of project q: %+v", c)
	}
	if c := got[stopped.Name]; c.ID != stopped.ID || c.NanoCPUs != 0 || c.MemoryBytes != 0 {
		t.Errorf("stopped container of project q: %+v", c)
	}
	var inspects []string
	for _, c := range f.Calls() {
		if strings.HasPrefix(c, "Inspect ") {
			inspects = append(inspects, c)
		}
	}
	if len(inspects) != 1 || inspects[0] != "Inspect "+run.ID {
		t.Errorf("inspects %v, want only the running container of another project", inspects)
	}

	// Removed between the list and its inspect: it is gone.
	f.FailNext("Inspect", fmt.Errorf("inspect container %s: %w", run.ID, ErrNotFound))
	st = gather()
	if !st.Reachable || len(st.Foreign) != 1 || st.Foreign[0].ID != stopped.ID {
		t.Errorf("container gone before its inspect: %+v", st)
	}

	// An inspect that fails otherwise makes the node unreachable: a
	// reservation is never read as none.
	f.SetError("Inspect", errors.New("connection to 10.0.0.9:22 lost"))
	st = gather()
	if st.Reachable || !strings.HasPrefix(st.Error, "a: ") || !strings.Contains(st.Error, "connection to 10.0.0.9:22 lost") {
		t.Errorf("inspect failure: %+v", st)
	}
}

// On a real engine: a running container of another berth project is
// gathered with the reservations its engine holds for it.
func TestE2EGatherForeignReservations(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	other := project + "x"
	t.Cleanup(func() { c.RemoveProject(t, other) })
	ctx := context.Background()
	d := c.Docker(t, "node2")
	resp, err := d.ContainerCreate(ctx,
		&container.Config{Image: testcluster.ImageV1, Labels: map[string]string{planner.LabelProject: other, planner.LabelService: "db"}},
		&container.HostConfig{Resources: container.Resources{NanoCPUs: 5e8, Memory: 64 << 20}}, nil, nil, other+"-db-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })
	if err := d.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	sess := Open(ctx, clusterConfig(c, project), clusterOptions(t))
	defer sess.Close()
	st := sess.Gather(ctx).Nodes["node2"]
	if st == nil || !st.Reachable {
		t.Fatalf("node2: %+v", st)
	}
	var found bool
	for _, f := range st.Foreign {
		if f.ID != resp.ID {
			continue
		}
		found = true
		if f.NanoCPUs != 5e8 || f.MemoryBytes != 64<<20 || f.State != "running" || f.Labels[planner.LabelProject] != other {
			t.Errorf("other project's container: %+v", f)
		}
	}
	if !found {
		t.Errorf("other project's container (no ports) not gathered: %+v", st.Foreign)
	}
}

// On a real engine: a replica's named volume is created with its labels
// (project, service, replica), an existing volume keeps its own, and the
// gather reports both (and an unlabelled named volume, matched by name).
func TestE2EGatherVolumeLabels(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	ctx := context.Background()
	d := c.Docker(t, "node1")
	legacy := project + "-legacy"
	// Cleanups run last first: the containers go (RemoveProject), then the
	// unlabelled volume they mounted.
	t.Cleanup(func() {
		if err := d.VolumeRemove(context.Background(), legacy, true); err != nil {
			t.Errorf("remove volume %s: %v", legacy, err)
		}
	})
	t.Cleanup(func() { c.RemoveProject(t, project) })
	if _, err := d.VolumeCreate(ctx, volume.CreateOptions{Name: legacy}); err != nil {
		t.Fatal(err)
	}
	sess := Open(ctx, clusterConfig(c, project), clusterOptions(t))
	defer sess.Close()
	n, err := sess.Node("node1")
	if err != nil {
		t.Fatal(err)
	}
	data := project + "-data"
	for _, r := range []string{"1", "2"} {
		spec := &planner.ContainerSpec{Name: project + "-db-" + r, Image: testcluster.ImageV1, Restart: "no",
			Labels:  map[string]string{planner.LabelProject: project, planner.LabelService: "db", planner.LabelReplica: r},
			Volumes: []planner.VolumeSpec{{Source: data, Target: "/data"}, {Source: legacy, Target: "/legacy", ReadOnly: true}}}
		if _, err := n.CreateContainer(ctx, spec.Name, spec); err != nil {
			t.Fatalf("replica %s: %v", r, err)
		}
	}
	st := sess.Gather(ctx).Nodes["node1"]
	if st == nil || !st.Reachable {
		t.Fatalf("node1: %+v", st)
	}
	got := map[string]map[string]string{}
	for _, v := range st.Volumes {
		got[v.Name] = v.Labels
	}
	want := map[string]string{planner.LabelProject: project, planner.LabelService: "db", planner.LabelReplica: "1"}
	if l, ok := got[data]; !ok || !reflect.DeepEqual(l, want) {
		t.Errorf("volume %s: labels %v (present %v), want %v (the first replica's)", data, l, ok, want)
	}
	if l, ok := got[legacy]; !ok || len(l) != 0 {
		t.Errorf("unlabelled volume %s: labels %v (present %v)", legacy, l, ok)
	}
	for _, ct := range st.Containers {
		var ro bool
		for _, m := range ct.Mounts {
			ro = ro || (m.Name == legacy && m.Type == "volume")
		}
		if !ro {
			t.Errorf("%s mounts %+v", ct.Name, ct.Mounts)
		}
	}
}
