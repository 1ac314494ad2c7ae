// Package nodetest is the contract of executor.Node as a test suite, run
// against every implementation: the in-memory fake, the local engine and a
// node over SSH (restic's backend/test is the model).
package nodetest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

// Image is the image the container tests run: it serves HTTP on 8080 with
// GET /healthz, and "/echo check" is its health check command (the test
// cluster's berth-test/echo:v1). Tests that need it skip when the node lacks
// it.
const Image = "berth-test/echo:v1"

// LoadTag is the tag of the tiny image the load test sends.
const LoadTag = "berth-nodetest/load:1"

// Run runs the suite. newNode returns a fresh connected node for each
// subtest; the suite closes it.
func Run(t *testing.T, newNode func(t *testing.T) executor.Node) {
	tests := []struct {
		name string
		fn   func(t *testing.T, n executor.Node)
	}{
		{"Info", testInfo},
		{"ContainerLifecycle", testLifecycle},
		{"EngineHealthCheck", testHealthCheck},
		{"NotFound", testNotFound},
		{"CreateErrors", testCreateErrors},
		{"Volumes", testVolumes},
		{"CreateVolumeAtomic", testCreateVolumeAtomic},
		{"Networks", testNetworks},
		{"HostPortsAndImages", testHostPortsAndImages},
		{"LoadImage", testLoadImage},
		{"DialClosed", testDialClosed},
		{"DialUnixMissing", testDialUnixMissing},
		{"ContextDeadline", testContextDeadline},
		{"Close", testClose},
		{"LogStream", testLogStream},
		{"Exec", testExec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t)
			t.Cleanup(func() { n.Close() })
			tc.fn(t, n)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func uniq(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func needImage(t *testing.T, n executor.Node) {
	t.Helper()
	imgs, err := n.Images(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		for _, tag := range img.Tags {
			if tag == Image {
				return
			}
		}
	}
	t.Skipf("node %s has no %s (scripts/testcluster up builds it on the host engine and every node)", n.Name(), Image)
}

// freePort picks a host port no listener holds on the node.
func freePort(t *testing.T, n executor.Node) int {
	t.Helper()
	ports, err := n.HostPorts(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]bool{}
	for _, p := range ports {
		used[p.Port] = true
	}
	b := make([]byte, 2)
	for {
		rand.Read(b)
		// Below the kernel's ephemeral range (32768-60999 by default): a
		// port in it can be held at any moment by an outgoing connection of
		// this or another test process, and the bind then fails.
		p := 20000 + (int(b[0])<<8+int(b[1]))%9000
		if !used[p] {
			return p
		}
	}
}

// hasContainer reports whether l holds the container with this ID.
func hasContainer(l []planner.Container, id string) bool {
	return slices.ContainsFunc(l, func(c planner.Container) bool { return c.ID == id })
}

// removeAfter removes the container when the test ends.
func removeAfter(t *testing.T, n executor.Node, id string) {
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.RemoveContainer(c, id)
	})
}

func spec(project, name string, port int) *planner.ContainerSpec {
	s := &planner.ContainerSpec{
		Name:  name,
		Image: Image,
		Env:   []planner.EnvVar{{Name: "NODE", Value: "suite"}, {Name: "SECRET", Sensitive: true, Secret: "s3"}},
		Labels: map[string]string{
			planner.LabelProject: project, planner.LabelService: "web", planner.LabelReplica: "1",
		},
		Restart:          "no",
		StopGraceSeconds: 2,
		MemoryBytes:      64 << 20,
	}
	if port > 0 {
		s.Ports = []planner.PortSpec{{Target: 8080, Published: port, Protocol: "tcp"}}
	}
	return s
}

func testInfo(t *testing.T, n executor.Node) {
	f, err := n.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version == "" || f.APIVersion == "" || f.OS == "" || f.Arch == "" || f.CPUs <= 0 || f.MemoryBytes <= 0 {
		t.Errorf("incomplete engine facts: %+v", f)
	}
	if n.Name() == "" {
		t.Error("no name")
	}
}

func testLifecycle(t *testing.T, n executor.Node) {
	needImage(t, n)
	c := ctx(t)
	project := uniq("nodetest")
	name := project + "-web-1"
	port := freePort(t, n)
	id, err := n.CreateContainer(c, name, spec(project, name, port))
	if err != nil {
		t.Fatal(err)
	}
	removeAfter(t, n, id)

	got, err := n.Inspect(c, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Name != name || got.State != "created" || got.Labels[planner.LabelProject] != project || got.Image != Image || !strings.HasPrefix(got.ImageID, "sha256:") {
		t.Errorf("created container: %+v", got)
	}
	own, _, err := n.Containers(c, project)
	if err != nil {
		t.Fatal(err)
	}
	if len(own) != 1 || own[0].ID != id || own[0].State != "created" {
		t.Fatalf("own containers after create: %+v", own)
	}

	if err := n.StartContainer(c, id); err != nil {
		t.Fatal(err)
	}
	got, err = n.Inspect(c, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "running" || got.IP == "" {
		t.Fatalf("started container: %+v", got)
	}
	var published bool
	for _, p := range got.Ports {
		if p.HostPort == port && p.ContainerPort == 8080 && p.Protocol == "tcp" {
			published = true
		}
	}
	if !published {
		t.Errorf("port %d not published: %+v", port, got.Ports)
	}
	// Another project sees this container as foreign: it publishes a port.
	_, foreign, err := n.Containers(c, project+"-other")
	if err != nil {
		t.Fatal(err)
	}
	if !hasContainer(foreign, id) {
		t.Errorf("a container publishing a port is not foreign to another project")
	}

	// The container answers HTTP on its address, as seen from the node.
	body := httpGet(t, n, net.JoinHostPort(got.IP, "8080"), "/healthz")
	if strings.TrimSpace(body) != "ok" {
		t.Errorf("GET /healthz: %q", body)
	}

	if _, err := n.Logs(c, id, 10); err != nil {
		t.Errorf("logs: %v", err)
	}
	up := spec(project, name, port)
	up.MemoryBytes, up.Restart, up.NanoCPUs = 128<<20, "on-failure", 500_000_000
	if err := n.UpdateContainer(c, id, up); err != nil {
		t.Errorf("update up: %v", err)
	}
	up.MemoryBytes = 32 << 20
	if err := n.UpdateContainer(c, id, up); err != nil {
		t.Errorf("update down: %v", err)
	}

	aside := name + "-old"
	if err := n.RenameContainer(c, id, aside); err != nil {
		t.Fatal(err)
	}
	if got, err := n.Inspect(c, aside); err != nil || got.ID != id {
		t.Errorf("inspect by new name: %+v %v", got, err)
	}

	start := time.Now()
	if err := n.StopContainer(c, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stop of a container that exits on SIGTERM took %s", d)
	}
	got, err = n.Inspect(c, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "exited" {
		t.Errorf("stopped container: %+v", got)
	}
	if err := n.RemoveContainer(c, id); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Inspect(c, id); !errors.Is(err, executor.ErrNotFound) {
		t.Errorf("inspect after remove: %v", err)
	}
	own, _, err = n.Containers(c, project)
	if err != nil || len(own) != 0 {
		t.Errorf("own containers after remove: %+v %v", own, err)
	}
}

// httpGet GETs path from addr through DialContainer.
func httpGet(t *testing.T, n executor.Node, addr, path string) string {
	t.Helper()
	var lastErr error
	for try := 0; try < 50; try++ {
		body, err := func() (string, error) {
			conn, err := n.DialContainer(ctx(t), addr)
			if err != nil {
				return "", err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
			req.Close = true
			if err := req.Write(conn); err != nil {
				return "", err
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			if resp.StatusCode != 200 {
				return "", fmt.Errorf("status %d: %s", resp.StatusCode, b.String())
			}
			return b.String(), nil
		}()
		if err == nil {
			return body
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond) // the server may still be starting
	}
	t.Fatalf("GET %s%s: %v", addr, path, lastErr)
	return ""
}

func testHealthCheck(t *testing.T, n executor.Node) {
	needImage(t, n)
	c := ctx(t)
	project := uniq("nodetest")
	name := project + "-web-1"
	s := spec(project, name, 0)
	s.Health = &planner.HealthSpec{Cmd: []string{"/echo", "check"}, IntervalMillis: 200, TimeoutMillis: 1000, Retries: 3}
	id, err := n.CreateContainer(c, name, s)
	if err != nil {
		t.Fatal(err)
	}
	removeAfter(t, n, id)
	// A container in another project's name space ("nodetest-..."), with no
	// ports, is reported to it as foreign: a create under its name would
	// collide.
	_, foreign, err := n.Containers(c, "nodetest")
	if err != nil {
		t.Fatal(err)
	}
	if !hasContainer(foreign, id) {
		t.Errorf("a container named like the project's is not reported as foreign")
	}
	if err := n.StartContainer(c, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := n.Inspect(c, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Health == "healthy" {
			break
		}
		if got.Health != "starting" && got.Health != "" || time.Now().After(deadline) {
			t.Fatalf("health: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testNotFound(t *testing.T, n executor.Node) {
	c := ctx(t)
	missing := uniq("nodetest-missing")
	checks := map[string]error{}
	_, checks["Inspect"] = n.Inspect(c, missing)
	checks["StartContainer"] = n.StartContainer(c, missing)
	checks["StopContainer"] = n.StopContainer(c, missing, time.Second)
	checks["RenameContainer"] = n.RenameContainer(c, missing, missing+"-x")
	checks["RemoveContainer"] = n.RemoveContainer(c, missing)
	checks["UpdateContainer"] = n.UpdateContainer(c, missing, &planner.ContainerSpec{Image: Image, Restart: "no"})
	_, checks["Logs"] = n.Logs(c, missing, 1)
	checks["RemoveVolume"] = n.RemoveVolume(c, missing)
	for m, err := range checks {
		if !errors.Is(err, executor.ErrNotFound) {
			t.Errorf("%s of a missing object: %v, want ErrNotFound", m, err)
		}
	}
}

func testCreateErrors(t *testing.T, n executor.Node) {
	c := ctx(t)
	project := uniq("nodetest")
	s := spec(project, project+"-x", 0)
	s.Image = "berth-nodetest/no-such-image:" + project
	if _, err := n.CreateContainer(c, project+"-x", s); err == nil {
		t.Error("create from a missing image succeeded")
	}
	needImage(t, n)
	name := project + "-dup"
	id, err := n.CreateContainer(c, name, spec(project, name, 0))
	if err != nil {
		t.Fatal(err)
	}
	removeAfter(t, n, id)
	if _, err := n.CreateContainer(c, name, spec(project, name, 0)); err == nil || errors.Is(err, executor.ErrNotFound) {
		t.Errorf("create with a taken name: %v", err)
	}
	id2, err := n.CreateContainer(c, name+"-2", spec(project, name+"-2", 0))
	if err != nil {
		t.Fatal(err)
	}
	removeAfter(t, n, id2)
	if err := n.RenameContainer(c, id2, name); err == nil {
		t.Error("rename onto a taken name succeeded")
	}
	// A published port already held: start fails, nothing is read as fine.
	port := freePort(t, n)
	a, err := n.CreateContainer(c, project+"-pa", spec(project, project+"-pa", port))
	if err != nil {
		t.Fatal(err)
	}
	removeAfter(t, n, a)
	b, err := n.CreateContainer(c, project+"-pb", spec(project, project+"-pb", port))
	if err != nil {
		t.Fatal(err)
	}
	removeAfter(t, n, b)
	if err := n.StartContainer(c, a); err != nil {
		t.Fatal(err)
	}
	if err := n.StartContainer(c, b); err == nil {
		t.Error("a second container started on a taken host port")
	}
}

func testVolumes(t *testing.T, n executor.Node) {
	c := ctx(t)
	name := uniq("nodetest-vol")
	project := name + "-p"
	labels := map[string]string{planner.LabelProject: project, planner.LabelKind: "lock", "holder": "a"}
	v, err := n.CreateVolume(c, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.RemoveVolume(context.Background(), name) })
	if v.Name != name || v.Labels["holder"] != "a" {
		t.Errorf("created volume: %+v", v)
	}
	// Same name again: the existing volume with its own labels.
	v2, err := n.CreateVolume(c, name, map[string]string{planner.LabelProject: project, "holder": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Labels["holder"] != "a" || v2.Labels[planner.LabelKind] != "lock" {
		t.Errorf("second create returned %+v, want the first creator's labels", v2)
	}
	for _, filter := range []map[string]string{
		{planner.LabelProject: project},
		{planner.LabelProject: project, planner.LabelKind: ""},
		{planner.LabelKind: "lock", "holder": "a", planner.LabelProject: project},
	} {
		vs, err := n.Volumes(c, filter)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 1 || vs[0].Name != name {
			t.Errorf("volumes %v: %+v", filter, vs)
		}
	}
	vs, err := n.Volumes(c, map[string]string{planner.LabelProject: project, "holder": "b"})
	if err != nil || len(vs) != 0 {
		t.Errorf("volumes with a non-matching label: %+v %v", vs, err)
	}
	if err := n.RemoveVolume(c, name); err != nil {
		t.Fatal(err)
	}
	vs, err = n.Volumes(c, map[string]string{planner.LabelProject: project})
	if err != nil || len(vs) != 0 {
		t.Errorf("volumes after remove: %+v %v", vs, err)
	}
	if err := n.RemoveVolume(c, name); !errors.Is(err, executor.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
}

// testCreateVolumeAtomic creates one volume from several goroutines with
// different labels: exactly one creator's labels win and every caller sees
// them. berth's lock relies on it.
func testCreateVolumeAtomic(t *testing.T, n executor.Node) {
	c := ctx(t)
	for round := 0; round < 5; round++ {
		name := uniq("nodetest-lock")
		var wg sync.WaitGroup
		got := make([]planner.Volume, 8)
		errs := make([]error, 8)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = n.CreateVolume(c, name, map[string]string{"holder": fmt.Sprint(i)})
			}()
		}
		wg.Wait()
		n.RemoveVolume(context.Background(), name)
		winners := map[string]int{}
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("create %d: %v", i, errs[i])
			}
			winners[got[i].Labels["holder"]]++
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: callers saw different holders: %v", round, winners)
		}
	}
}

func testHostPortsAndImages(t *testing.T, n executor.Node) {
	c := ctx(t)
	ports, err := n.HostPorts(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if (p.Protocol != "tcp" && p.Protocol != "udp") || p.Port <= 0 || p.Port > 65535 || net.ParseIP(p.IP) == nil {
			t.Errorf("bad host port %+v", p)
		}
	}
	imgs, err := n.Images(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if !strings.HasPrefix(img.ID, "sha256:") {
			t.Errorf("image ID %q", img.ID)
		}
	}
}

// testLoadImage sends a minimal `docker save` tarball (one layer with one
// file) and finds its tag afterwards.
func testLoadImage(t *testing.T, n executor.Node) {
	c := ctx(t)
	tarball, id := MinimalImage(LoadTag)
	if err := n.LoadImage(c, bytes.NewReader(tarball)); err != nil {
		t.Fatal(err)
	}
	imgs, err := n.Images(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		for _, tag := range img.Tags {
			if tag == LoadTag {
				if img.ID != id {
					t.Errorf("loaded image ID %s, want %s", img.ID, id)
				}
				return
			}
		}
	}
	t.Errorf("%s not found after load", LoadTag)
	if err := n.LoadImage(c, strings.NewReader("not a tarball")); err == nil {
		t.Error("loading garbage succeeded")
	}
}

// MinimalImage returns a `docker save` tarball of a one-file image tagged
// tag, and the image's ID.
func MinimalImage(tag string) ([]byte, string) {
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	content := []byte("berth nodetest\n")
	lw.WriteHeader(&tar.Header{Name: "nodetest.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0)})
	lw.Write(content)
	lw.Close()
	diffID := sha256.Sum256(layer.Bytes())
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Cmd": []string{"/nodetest.txt"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
		"history":      []map[string]any{{"created_by": "berth nodetest"}},
	})
	cfgSum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	layerName := hex.EncodeToString(diffID[:]) + "/layer.tar"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": []string{layerName}}})

	var out bytes.Buffer
	w := tar.NewWriter(&out)
	add := func(name string, b []byte) {
		w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)})
		w.Write(b)
	}
	w.WriteHeader(&tar.Header{Name: hex.EncodeToString(diffID[:]) + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)})
	add(layerName, layer.Bytes())
	add(cfgName, cfg)
	add("manifest.json", manifest)
	w.Close()
	return out.Bytes(), "sha256:" + hex.EncodeToString(cfgSum[:])
}

func testDialClosed(t *testing.T, n executor.Node) {
	// Nothing listens on the discard port of the node's loopback.
	conn, err := n.DialContainer(ctx(t), "127.0.0.1:9")
	if err == nil {
		conn.Close()
		t.Error("dial to a closed port succeeded")
	}
}

func testDialUnixMissing(t *testing.T, n executor.Node) {
	conn, err := n.DialUnix(ctx(t), "/nonexistent-berth-nodetest/admin.sock")
	if err == nil {
		conn.Close()
		t.Error("dial to a missing unix socket succeeded")
	}
}

// DialUnixPing checks DialUnix against a Docker engine's socket at path on
// the node: GET /_ping over the connection answers "OK". Run it for nodes
// whose engine socket path is known (the suite cannot know it).
func DialUnixPing(t *testing.T, n executor.Node, path string) {
	t.Helper()
	conn, err := n.DialUnix(ctx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", "http://docker/_ping", nil)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || body.String() != "OK" {
		t.Fatalf("GET /_ping over DialUnix(%s): %d %q", path, resp.StatusCode, body.String())
	}
}

func testContextDeadline(t *testing.T, n executor.Node) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Info(c); err == nil {
		t.Error("Info with a cancelled context succeeded")
	}
	if _, _, err := n.Containers(c, "x"); err == nil {
		t.Error("Containers with a cancelled context succeeded")
	}
}

func testClose(t *testing.T, n executor.Node) {
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close every call fails: never read as "nothing there".
	own, foreign, err := n.Containers(ctx(t), "x")
	if err == nil {
		t.Errorf("Containers after Close: %v %v, no error", own, foreign)
	}
}

// networksOf gives a container's networks as "name" or "name(alias,...)"
// keeping only the wanted aliases (older engines add the short ID).
func networksOf(c planner.Container, want ...string) []string {
	var out []string
	for _, a := range c.Networks {
		s := a.Name
		var as []string
		for _, al := range a.Aliases {
			if slices.Contains(want, al) {
				as = append(as, al)
			}
		}
		if len(as) > 0 {
			s += "(" + strings.Join(as, ",") + ")"
		}
		out = append(out, s)
	}
	return out
}

func testNetworks(t *testing.T, n executor.Node) {
	c := ctx(t)
	project := uniq("nodetest")
	name := planner.NetworkName(project)
	if nets, err := n.Networks(c, project); err != nil || len(nets) != 0 {
		t.Fatalf("networks of a new project: %+v %v", nets, err)
	}
	id, err := n.CreateNetwork(c, name, planner.NetworkLabels(project))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.RemoveNetwork(c, name)
	})
	if _, err := n.CreateNetwork(c, name, planner.NetworkLabels(project)); err == nil {
		t.Errorf("a second network of the same name was created")
	}
	nets, err := n.Networks(c, project)
	if err != nil || len(nets) != 1 || nets[0].ID != id || nets[0].Name != name || nets[0].Labels[planner.LabelKind] != planner.KindNetwork || len(nets[0].Containers) != 0 {
		t.Fatalf("networks after create: %+v %v", nets, err)
	}
	// Another project's networks are not listed.
	if other, err := n.Networks(c, project+"x"); err != nil || len(other) != 0 {
		t.Errorf("networks of another project: %+v %v", other, err)
	}

	needImage(t, n)
	cname := project + "-web-1"
	s := spec(project, cname, 0)
	s.Network, s.Aliases = name, []string{"web", "web-1"}
	cid, err := n.CreateContainer(c, cname, s)
	if err != nil {
		t.Fatal(err)
	}
	removeAfter(t, n, cid)
	want := name + "(web,web-1)"
	got, err := n.Inspect(c, cid)
	if err != nil || !slices.Equal(networksOf(got, "web", "web-1"), []string{want}) {
		t.Fatalf("networks of a created container: %v %v", networksOf(got, "web", "web-1"), err)
	}
	if err := n.StartContainer(c, cid); err != nil {
		t.Fatal(err)
	}
	if nets, err := n.Networks(c, project); err != nil || len(nets) != 1 || !slices.Equal(nets[0].Containers, []string{cid}) {
		t.Fatalf("network with a running container: %+v %v", nets, err)
	}
	if err := n.RemoveNetwork(c, name); err == nil {
		t.Fatalf("a network with a running container was removed")
	}

	// Join the default bridge too, leave it, rejoin the project network
	// with other aliases.
	if err := n.ConnectNetwork(c, "bridge", cid, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = n.Inspect(c, cid)
	if g := networksOf(got, "web", "web-1"); !slices.Equal(g, []string{name + "(web,web-1)", "bridge"}) && !slices.Equal(g, []string{"bridge", want}) {
		t.Errorf("after connect to bridge: %v", g)
	}
	if err := n.DisconnectNetwork(c, "bridge", cid); err != nil {
		t.Fatal(err)
	}
	if err := n.DisconnectNetwork(c, "bridge", cid); err == nil {
		t.Errorf("disconnect of a container not on the network succeeded")
	}
	if err := n.DisconnectNetwork(c, name, cid); err != nil {
		t.Fatal(err)
	}
	if err := n.ConnectNetwork(c, name, cid, []string{"web", "web-1", "extra"}); err != nil {
		t.Fatal(err)
	}
	got, _ = n.Inspect(c, cid)
	if g := networksOf(got, "web", "web-1", "extra"); !slices.Equal(g, []string{name + "(extra,web,web-1)"}) {
		t.Errorf("after rejoin: %v", g)
	}

	if err := n.RemoveContainer(c, cid); err != nil {
		t.Fatal(err)
	}
	if err := n.RemoveNetwork(c, name); err != nil {
		t.Fatalf("remove an empty network: %v", err)
	}
	if nets, err := n.Networks(c, project); err != nil || len(nets) != 0 {
		t.Errorf("networks after remove: %+v %v", nets, err)
	}
	if err := n.RemoveNetwork(c, name); !errors.Is(err, executor.ErrNotFound) {
		t.Errorf("remove a missing network: %v", err)
	}
}
