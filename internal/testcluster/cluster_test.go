package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	mathrand "math/rand/v2"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ---- unit tests: no cluster needed

func TestRequireSkipsWithoutE2E(t *testing.T) {
	t.Setenv("BERTH_E2E", "")
	var skipped bool
	var msg string
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Require(t)
		msg = "Require returned"
	})
	if !skipped || msg != "" {
		t.Fatalf("Require without BERTH_E2E did not skip (%s)", msg)
	}
}

func TestProjectName(t *testing.T) {
	re := regexp.MustCompile(`^t-[a-z0-9][a-z0-9-]*-[0-9a-f]{6}$`)
	for _, name := range []string{"A/B c_D", "Ünïcode/ÄÖ", "very/long/name/" + strings.Repeat("x", 80)} {
		t.Run(name, func(t *testing.T) {
			p := ProjectName(t)
			if !re.MatchString(p) || len(p) > 40 || strings.Contains(p, "--") {
				t.Errorf("ProjectName = %q", p)
			}
			if q := ProjectName(t); q == p {
				t.Errorf("ProjectName twice gave %q both times", p)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	env := `# comment
BERTH_TC_DIR=/x/.testcluster
BERTH_TC_NODES="a b"
BERTH_TC_KEY=/x/.testcluster/id_ed25519
BERTH_TC_KNOWN_HOSTS='/x/.testcluster/known_hosts'
BERTH_TC_USER=root
BERTH_TC_BRIDGE_IP=10.231.0.1
BERTH_TC_A_ADDR=10.231.0.11
BERTH_TC_A_DOCKER_HOST=unix:///x/a/docker.sock
BERTH_TC_A_NETNS=berth-a
BERTH_TC_A_HOSTKEY_FPR=SHA256:aaa
BERTH_TC_B_ADDR=10.231.0.12
BERTH_TC_B_DOCKER_HOST=unix:///x/b/docker.sock
BERTH_TC_B_NETNS=berth-b
BERTH_TC_B_HOSTKEY_FPR=SHA256:bbb
`
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir != "/x/.testcluster" || c.KnownHosts != "/x/.testcluster/known_hosts" || c.User != "root" || c.BridgeIP != "10.231.0.1" {
		t.Errorf("cluster = %+v", c)
	}
	want := []Node{
		{"a", "10.231.0.11", "unix:///x/a/docker.sock", "berth-a", "SHA256:aaa"},
		{"b", "10.231.0.12", "unix:///x/b/docker.sock", "berth-b", "SHA256:bbb"},
	}
	if fmt.Sprint(c.Nodes) != fmt.Sprint(want) {
		t.Errorf("nodes = %v, want %v", c.Nodes, want)
	}

	os.WriteFile(filepath.Join(dir, "env"), []byte(strings.Replace(env, "BERTH_TC_B_NETNS=berth-b\n", "", 1)), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "BERTH_TC_B_NETNS") {
		t.Errorf("Load with a key missing: err = %v", err)
	}
}

// SSHArgs make OpenSSH open a fresh connection with the cluster's key and
// known_hosts, whatever any ssh_config says: ssh -G prints the options it
// would use, without connecting.
func TestSSHArgs(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client")
	}
	key := filepath.Join(t.TempDir(), "id_ed25519") // ssh -G drops a key file that does not exist
	os.WriteFile(key, nil, 0o600)
	c := &Cluster{Nodes: []Node{{Name: "node1", Addr: "10.231.0.11"}}, Key: key, KnownHosts: "/x/known_hosts", User: "root"}
	args := c.SSHArgs("node1", "true")
	if args[0] != "-F" || args[1] != "/dev/null" || args[len(args)-2] != "root@10.231.0.11" || args[len(args)-1] != "true" {
		t.Fatalf("SSHArgs = %q", args)
	}
	out, err := exec.Command("ssh", append([]string{"-G"}, args[:len(args)-1]...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh -G: %v\n%s", err, out)
	}
	got := map[string]string{} // the first value of each option
	var ids []string
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && got[k] == "" {
			got[k] = v
		}
		if k, v, ok := strings.Cut(l, " "); ok && k == "identityfile" {
			ids = append(ids, v)
		}
	}
	if !slices.Contains(ids, key) {
		t.Errorf("ssh -G: identity files %q lack the cluster's key", ids)
	}
	for k, want := range map[string]string{
		"controlmaster": "false", "identitiesonly": "yes", "batchmode": "yes", "stricthostkeychecking": "true",
		"userknownhostsfile": "/x/known_hosts", "user": "root", "hostname": "10.231.0.11",
	} {
		if got[k] != want {
			t.Errorf("ssh -G %s: %s = %q, want %q", strings.Join(args, " "), k, got[k], want)
		}
	}
	if p, ok := got["controlpath"]; ok && p != "none" {
		t.Errorf("ssh would share a connection through ControlPath %s", p)
	}
}

// ---- end-to-end tests (BERTH_E2E=1, cluster up)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// get GETs url, retrying while the connection is refused or reset (a
// container just started) until the deadline.
func get(url string, wait time.Duration) (int, string, error) {
	deadline := time.Now().Add(wait)
	hc := http.Client{Timeout: 3 * time.Second}
	for {
		resp, err := hc.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b), err
		}
		if time.Now().After(deadline) {
			return 0, "", err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// port returns a host port for a test to publish: random, away from the
// ports that berth's tests and people's experiments tend to use
// (18000-18999 in e2e), from the 20000-28999 that executor/nodetest's
// freePort picks from while this package's tests may run, and below the
// kernel's ephemeral range (32768-60999), where an outgoing connection can
// hold a port at any moment.
func port() int { return 10100 + mathrand.IntN(7800) }

// project gives the test a project label whose containers, volumes and
// networks are removed at its end.
func project(t *testing.T, c *Cluster) string {
	p := ProjectName(t)
	t.Cleanup(func() { c.RemoveProject(t, p) })
	return p
}

func TestIsolation(t *testing.T) {
	c := Require(t)
	ctx := ctxT(t, 2*time.Minute)
	proj := project(t, c)
	n1, n2, n3 := c.Node(t, "node1"), c.Node(t, "node2"), c.Node(t, "node3")

	// Distinct engines.
	ids := map[string]string{}
	for _, n := range c.Nodes {
		info, err := c.Docker(t, n.Name).Info(ctx)
		if err != nil {
			t.Fatalf("%s: info: %v", n.Name, err)
		}
		if other, dup := ids[info.ID]; dup {
			t.Errorf("%s and %s share engine ID %s", other, n.Name, info.ID)
		}
		ids[info.ID] = n.Name
		if info.Name != n.Name {
			t.Errorf("%s: engine name %q", n.Name, info.Name)
		}
	}

	// A container started over SSH, as berth does.
	hp := fmt.Sprint(port())
	out, err := c.SSHCommand(ctx, "node1", "docker", "run", "-d", "--name", proj, "--label", ProjectLabel+"="+proj,
		"-e", "NODE=node1", "-p", hp+":8080", ImageV1).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh node1 docker run: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out))

	if _, err := c.Docker(t, "node1").ContainerInspect(ctx, id); err != nil {
		t.Errorf("node1's engine does not know the container it started: %v", err)
	}
	for _, n := range []string{"node2", "node3"} {
		list, err := c.Docker(t, n).ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, ct := range list {
			if ct.ID == id || strings.Contains(strings.Join(ct.Names, ","), proj) {
				t.Errorf("%s's engine lists node1's container %s", n, ct.Names)
			}
		}
		// And over SSH too.
		out, err := c.SSHCommand(ctx, n, "docker", "ps", "-aq", "--no-trunc").CombinedOutput()
		if err != nil {
			t.Fatalf("ssh %s docker ps: %v\n%s", n, err, out)
		}
		if strings.Contains(string(out), id) {
			t.Errorf("docker ps over ssh on %s lists node1's container", n)
		}
	}

	status, body, err := get("http://"+n1.Addr+":"+hp+"/", 15*time.Second)
	if err != nil || status != 200 || body != "echo v1 on node1\n" {
		t.Errorf("GET node1:%s = %d %q, %v", hp, status, body, err)
	}
	for _, n := range []Node{n2, n3} {
		conn, err := net.DialTimeout("tcp", n.Addr+":"+hp, 3*time.Second)
		if err == nil {
			conn.Close()
			t.Errorf("%s:%s accepts connections; only node1 publishes it", n.Name, hp)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s:%s: want connection refused, got %v", n.Name, hp, err)
		}
	}
}

func TestWrongKnownHostsRefused(t *testing.T) {
	c := Require(t)
	ctx := ctxT(t, time.Minute)
	n1, n2 := c.Node(t, "node1"), c.Node(t, "node2")

	kh, err := os.ReadFile(c.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{} // address -> "type base64"
	for _, line := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("known_hosts line %q", line)
		}
		keys[f[0]] = f[1] + " " + f[2]
	}
	if len(keys) != len(c.Nodes) {
		t.Fatalf("known_hosts has %d hosts, cluster %d nodes", len(keys), len(c.Nodes))
	}

	// The recorded fingerprint is what the node presents.
	scan, err := exec.CommandContext(ctx, "ssh-keyscan", "-t", "ed25519", n2.Addr).Output()
	if err != nil {
		t.Fatalf("ssh-keyscan %s: %v", n2.Addr, err)
	}
	keygen := exec.CommandContext(ctx, "ssh-keygen", "-l", "-E", "sha256", "-f", "-")
	keygen.Stdin = bytes.NewReader(scan)
	fpr, err := keygen.Output()
	if err != nil || !strings.Contains(string(fpr), n2.HostKeyFingerprint) {
		t.Errorf("node2 presents %s, env says %s (%v)", fpr, n2.HostKeyFingerprint, err)
	}

	sshWith := func(knownHosts string) (string, error) {
		p := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(p, []byte(knownHosts), 0o600)
		args := c.SSHArgs("node2", "true")
		for i, a := range args {
			if strings.HasPrefix(a, "UserKnownHostsFile=") {
				args[i] = "UserKnownHostsFile=" + p
			}
		}
		out, err := exec.CommandContext(ctx, "ssh", append([]string{"-o", "LogLevel=INFO"}, args...)...).CombinedOutput()
		return string(out), err
	}

	if out, err := sshWith(string(kh)); err != nil {
		t.Fatalf("ssh node2 with the right known_hosts: %v\n%s", err, out)
	}
	// golang.org/x/crypto/ssh accepts every node against known_hosts too.
	for _, n := range c.Nodes {
		dialGo(t, c, n.Name).Close()
	}
	// node2's address with node1's key: a changed host key.
	wrong := fmt.Sprintf("%s %s\n%s %s\n", n1.Addr, keys[n1.Addr], n2.Addr, keys[n1.Addr])
	out, err := sshWith(wrong)
	if err == nil {
		t.Fatalf("ssh node2 with node1's key in known_hosts succeeded:\n%s", out)
	}
	if !strings.Contains(out, "Host key verification failed") {
		t.Errorf("ssh node2 with a wrong known_hosts entry: %v\n%s", err, out)
	}
	// node2 not in known_hosts at all.
	out, err = sshWith(fmt.Sprintf("%s %s\n", n1.Addr, keys[n1.Addr]))
	if err == nil || !strings.Contains(out, "Host key verification failed") {
		t.Errorf("ssh node2 unknown to known_hosts: %v\n%s", err, out)
	}
}

// run starts image on node with the test project's label, publishing 8080 on
// hostPort, and returns the container ID.
func run(t *testing.T, c *Cluster, node, image, proj string, hostPort int, extra func(*container.Config, *container.HostConfig)) string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	cfg := &container.Config{
		Image:        image,
		Env:          []string{"NODE=" + node},
		Labels:       map[string]string{ProjectLabel: proj},
		ExposedPorts: nat.PortSet{"8080/tcp": {}},
	}
	hc := &container.HostConfig{PortBindings: nat.PortMap{"8080/tcp": {{HostPort: fmt.Sprint(hostPort)}}}}
	if extra != nil {
		extra(cfg, hc)
	}
	cli := c.Docker(t, node)
	created, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, "")
	if err != nil {
		t.Fatalf("%s: create %s: %v", node, image, err)
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("%s: start %s: %v", node, image, err)
	}
	return created.ID
}

func TestImages(t *testing.T) {
	c := Require(t)
	proj := project(t, c)
	n2, n3 := c.Node(t, "node2"), c.Node(t, "node3")
	p0 := port()

	t.Run("v1", func(t *testing.T) {
		id := run(t, c, "node3", ImageV1, proj, p0, nil)
		base := fmt.Sprintf("http://%s:%d", n3.Addr, p0)
		if s, b, err := get(base+"/", 15*time.Second); err != nil || s != 200 || b != "echo v1 on node3\n" {
			t.Errorf("GET / = %d %q, %v", s, b, err)
		}
		if s, _, err := get(base+"/healthz", time.Second); err != nil || s != 200 {
			t.Errorf("GET /healthz = %d, %v", s, err)
		}
		if s, _, err := get(base+"/read?f=x", time.Second); err != nil || s != 404 {
			t.Errorf("GET /read without /data = %d, %v; want 404", s, err)
		}
		// SIGTERM ends it at once, with status 0.
		ctx := ctxT(t, time.Minute)
		start := time.Now()
		timeout := 10
		if err := c.Docker(t, "node3").ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("stop took %s; the server should exit on SIGTERM", d)
		}
		if st, err := c.Docker(t, "node3").ContainerInspect(ctx, id); err != nil || st.State.ExitCode != 0 {
			t.Errorf("exit code after SIGTERM: %v %v", st.State, err)
		}
	})

	t.Run("v2", func(t *testing.T) {
		run(t, c, "node2", ImageV2, proj, p0+1, nil)
		if s, b, err := get(fmt.Sprintf("http://%s:%d/", n2.Addr, p0+1), 15*time.Second); err != nil || s != 200 || b != "echo v2 on node2\n" {
			t.Errorf("GET / = %d %q, %v", s, b, err)
		}
	})

	t.Run("data", func(t *testing.T) {
		vol := proj + "-data"
		ctx := ctxT(t, time.Minute)
		if _, err := c.Docker(t, "node2").VolumeCreate(ctx, volume.CreateOptions{Name: vol, Labels: map[string]string{ProjectLabel: proj}}); err != nil {
			t.Fatal(err)
		}
		run(t, c, "node2", ImageV1, proj, p0+2, func(_ *container.Config, hc *container.HostConfig) {
			hc.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/data"}}
		})
		base := fmt.Sprintf("http://%s:%d", n2.Addr, p0+2)
		if s, b, err := get(base+"/write?f=greeting&v=hello", 15*time.Second); err != nil || s != 200 {
			t.Fatalf("GET /write = %d %q, %v", s, b, err)
		}
		if s, b, err := get(base+"/read?f=greeting", time.Second); err != nil || s != 200 || b != "hello" {
			t.Errorf("GET /read = %d %q, %v", s, b, err)
		}
		if s, _, err := get(base+"/read?f=nothing", time.Second); err != nil || s != 404 {
			t.Errorf("GET /read of a missing file = %d, %v", s, err)
		}
	})

	t.Run("broken", func(t *testing.T) {
		ctx := ctxT(t, time.Minute)
		id := run(t, c, "node3", ImageBroken, proj, p0+3, nil)
		started := time.Now()
		waitc, errc := c.Docker(t, "node3").ContainerWait(ctx, id, container.WaitConditionNotRunning)
		base := fmt.Sprintf("http://%s:%d", n3.Addr, p0+3)
		if s, b, err := get(base+"/", 2*time.Second); err != nil || s != 200 || b != "echo broken on node3\n" {
			t.Errorf("GET / = %d %q, %v", s, b, err)
		}
		if s, _, err := get(base+"/healthz", time.Second); err != nil || s != 500 {
			t.Errorf("GET /healthz = %d, %v; want 500", s, err)
		}
		select {
		case w := <-waitc:
			if w.StatusCode != 1 {
				t.Errorf("broken exited with %d, want 1", w.StatusCode)
			}
			if d := time.Since(started); d < 2*time.Second || d > 8*time.Second {
				t.Errorf("broken exited after %s, want about 3 s", d)
			}
		case err := <-errc:
			t.Fatalf("wait: %v", err)
		}
	})
}

func TestConfigDir(t *testing.T) {
	c := Require(t)
	ctx := ctxT(t, time.Minute)
	var proj, dir string
	t.Run("inner", func(t *testing.T) {
		dir = c.ConfigDir(t, map[string]string{"app.hcl": "# app\n", "sub/x.hcl": "# x\n"})
		proj = filepath.Base(dir)
		if !regexp.MustCompile(`^t-configdir-inner-[0-9a-f]{6}$`).MatchString(proj) {
			t.Errorf("project %q", proj)
		}
		for name, want := range map[string]string{"nodes.hcl": c.NodesHCL(), "app.hcl": "# app\n", "sub/x.hcl": "# x\n"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
				t.Errorf("%s: %q, %v", name, b, err)
			}
		}
		if !strings.Contains(c.NodesHCL(), `node "node3"`) || !strings.Contains(c.NodesHCL(), c.Key) {
			t.Errorf("nodes.hcl:\n%s", c.NodesHCL())
		}
		// Things berth would leave: a container with an anonymous volume,
		// a lock volume, a network.
		lbl := map[string]string{ProjectLabel: proj}
		for _, node := range []string{"node1", "node2"} {
			cli := c.Docker(t, node)
			if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: proj + "-lock", Labels: lbl}); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.NetworkCreate(ctx, proj+"-net", network.CreateOptions{Labels: lbl}); err != nil {
				t.Fatal(err)
			}
			created, err := cli.ContainerCreate(ctx, &container.Config{Image: ImageV1, Labels: lbl, Volumes: map[string]struct{}{"/data": {}}}, nil, nil, nil, proj+"-web")
			if err != nil {
				t.Fatal(err)
			}
			if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("config dir %s still there: %v", dir, err)
	}
	f := filters.NewArgs(filters.Arg("label", ProjectLabel+"="+proj))
	for _, n := range c.Nodes {
		cli := c.Docker(t, n.Name)
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		vs, err2 := cli.VolumeList(ctx, volume.ListOptions{})
		ns, err3 := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err := errors.Join(err, err2, err3); err != nil {
			t.Fatal(err)
		}
		if len(cs) != 0 || len(ns) != 0 {
			t.Errorf("%s: left behind %d containers, %d networks", n.Name, len(cs), len(ns))
		}
		for _, v := range vs.Volumes {
			if v.Labels[ProjectLabel] == proj || v.Name == proj+"-lock" {
				t.Errorf("%s: volume %s left behind", n.Name, v.Name)
			}
		}
	}
}

func TestBuildBerth(t *testing.T) {
	Require(t)
	p := BuildBerth(t)
	if q := BuildBerth(t); q != p {
		t.Errorf("BuildBerth twice: %s, %s", p, q)
	}
	out, err := exec.Command(p, "help").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("berth")) {
		t.Errorf("%s help: %v\n%s", p, err, out)
	}
}

// dialGo connects to the node with golang.org/x/crypto/ssh, checking its
// host key against the cluster's known_hosts as berth does.
func dialGo(t *testing.T, c *Cluster, node string) *ssh.Client {
	t.Helper()
	pem, err := os.ReadFile(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	hostKeys, err := knownhosts.New(c.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ssh.Dial("tcp", net.JoinHostPort(c.Node(t, node).Addr, "22"), &ssh.ClientConfig{
		User:            c.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh %s (x/crypto/ssh): %v", node, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialState says how a TCP connection to addr:22 goes: "open", "refused" or
// "timeout".
func dialState(addr string) string {
	conn, err := net.DialTimeout("tcp", addr+":22", 2*time.Second)
	switch {
	case err == nil:
		conn.Close()
		return "open"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return err.Error()
	}
}

func TestFaults(t *testing.T) {
	c := Require(t)
	// Exclusive before the deadline starts: the wait for the other test
	// processes must not use up the test's three minutes.
	c.Exclusive(t)
	ctx := ctxT(t, 3*time.Minute)
	sshTrue := func(node string) (string, error) {
		out, err := c.SSHCommand(ctx, node, "true").CombinedOutput()
		return string(out), err
	}

	t.Run("Blackhole", func(t *testing.T) {
		n3 := c.Node(t, "node3")
		c.Blackhole(t, "node3")
		if s := dialState(n3.Addr); s != "timeout" {
			t.Errorf("blackholed node3:22 is %s, want timeout", s)
		}
		if _, err := c.Docker(t, "node3").Ping(ctx); err != nil {
			t.Errorf("node3's engine through its host socket: %v", err)
		}
		c.Unblackhole(t, "node3")
		if s := dialState(n3.Addr); s != "open" {
			t.Errorf("node3:22 after Unblackhole is %s", s)
		}
	})

	t.Run("StopSSHD", func(t *testing.T) {
		c.StopSSHD(t, "node2")
		if s := dialState(c.Node(t, "node2").Addr); s != "refused" {
			t.Errorf("node2:22 with sshd stopped is %s, want refused", s)
		}
		c.StartSSHD(t, "node2")
		if out, err := sshTrue("node2"); err != nil {
			t.Errorf("ssh node2 after StartSSHD: %v\n%s", err, out)
		}
	})

	t.Run("MaxSessions", func(t *testing.T) {
		c.StartSSHD(t, "node2", "MaxSessions 1")
		conn := dialGo(t, c, "node2")
		s1, err := conn.NewSession()
		if err != nil {
			t.Fatalf("first session: %v", err)
		}
		defer s1.Close()
		if s2, err := conn.NewSession(); err == nil {
			s2.Close()
			t.Errorf("a second session on one connection opened despite MaxSessions 1")
		} else if !strings.Contains(err.Error(), "rejected") {
			t.Errorf("second session: %v", err)
		}
	})

	t.Run("SwapHostKey", func(t *testing.T) {
		c.SwapHostKey(t, "node1")
		if out, err := sshTrue("node1"); err == nil || !strings.Contains(out, "Host key verification failed") {
			t.Errorf("ssh node1 with a swapped host key: %v\n%s", err, out)
		}
		c.RestoreHostKey(t, "node1")
		if out, err := sshTrue("node1"); err != nil {
			t.Errorf("ssh node1 after RestoreHostKey: %v\n%s", err, out)
		}
	})

	// Each subtest's cleanup has undone its fault.
	for _, n := range c.Nodes {
		if s := dialState(n.Addr); s != "open" {
			t.Errorf("%s:22 after the fault tests: %s", n.Name, s)
		}
		if out, err := sshTrue(n.Name); err != nil {
			t.Errorf("ssh %s after the fault tests: %v\n%s", n.Name, err, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.Dir, "node2", "sshd_config")); err != nil || bytes.Contains(b, []byte("MaxSessions")) {
		t.Errorf("node2's sshd_config after the fault tests: %v\n%s", err, b)
	}
}
