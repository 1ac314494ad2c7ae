package executor

// End-to-end tests and benchmarks against the local three-node test cluster
// (scripts/testcluster up; BERTH_E2E=1). They skip otherwise.
//
//	BERTH_E2E=1 go test ./executor -run E2E -v
//	BERTH_E2E=1 go test ./executor -run '^$' -bench Cluster -benchtime 20x

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"golang.org/x/crypto/ssh"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/internal/testcluster"
	"github.com/berth-dev/berth/planner"
)

// clusterConfig is a configuration of the cluster's nodes for project.
func clusterConfig(c *testcluster.Cluster, project string) *config.Config {
	cfg := &config.Config{Project: config.Project{Name: project}}
	for _, n := range c.Nodes {
		cfg.Nodes = append(cfg.Nodes, &config.Node{
			Name: n.Name, Address: n.Addr, User: c.User, IdentityFile: c.Key, KnownHosts: c.KnownHosts,
			DockerSocket: config.DefaultDockerSocket,
		})
	}
	return cfg
}

// clusterOptions isolate a test from the user's ~/.ssh and ssh-agent.
func clusterOptions(t testing.TB) Options {
	return Options{SSH: transport.Options{HomeDir: t.TempDir(), Environ: []string{"USER=root"}, NoTTY: true}}
}

// startContainer runs a container of project on node through the node's
// engine directly (not through berth).
func startContainer(t *testing.T, c *testcluster.Cluster, node, name string, labels map[string]string, hostPort int) string {
	t.Helper()
	ctx := context.Background()
	d := c.Docker(t, node)
	cfg := &container.Config{Image: testcluster.ImageV1, Labels: labels}
	hc := &container.HostConfig{}
	if hostPort > 0 {
		cfg.ExposedPorts = nat.PortSet{"8080/tcp": {}}
		hc.PortBindings = nat.PortMap{"8080/tcp": {{HostPort: fmt.Sprint(hostPort)}}}
	}
	resp, err := d.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })
	if err := d.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

func TestE2EGather(t *testing.T) {
	c := testcluster.Require(t)
	project := testcluster.ProjectName(t)
	t.Cleanup(func() { c.RemoveProject(t, project) })
	lbl := func(replica string) map[string]string {
		return map[string]string{planner.LabelProject: project, planner.LabelService: "web", planner.LabelReplica: replica}
	}
	id1 := startContainer(t, c, "node1", project+"-web-1", lbl("1"), 0)
	id3 := startContainer(t, c, "node3", project+"-web-2", lbl("2"), 0)
	foreign := startContainer(t, c, "node2", project+"x-other", map[string]string{planner.LabelProject: project + "x"}, 18231)

	ctx := context.Background()
	cfg := clusterConfig(c, project)
	// A service that publishes a port makes the gather read host ports.
	cfg.Services = append(cfg.Services, &config.Service{Name: "web", Image: testcluster.ImageV1,
		Ports: []config.Port{{Target: 8080, Protocol: "tcp"}}})
	sess := Open(ctx, cfg, clusterOptions(t))
	defer sess.Close()
	start := time.Now()
	live := sess.Gather(ctx)
	t.Logf("gather of 3 nodes: %s", time.Since(start))
	ids := map[string]bool{}
	for _, n := range c.Nodes {
		st := live.Nodes[n.Name]
		if st == nil || !st.Reachable {
			t.Fatalf("%s: %+v", n.Name, st)
		}
		if st.Engine.ID == "" || ids[st.Engine.ID] {
			t.Errorf("%s: engine ID %q not distinct", n.Name, st.Engine.ID)
		}
		ids[st.Engine.ID] = true
		var ssh bool
		for _, p := range st.HostPorts {
			ssh = ssh || (p.Protocol == "tcp" && p.Port == 22)
		}
		if !ssh {
			t.Errorf("%s: host ports lack sshd's 22: %v", n.Name, st.HostPorts)
		}
	}
	own := func(node string) []string {
		var out []string
		for _, ct := range live.Nodes[node].Containers {
			out = append(out, ct.ID)
		}
		return out
	}
	if got := own("node1"); len(got) != 1 || got[0] != id1 {
		t.Errorf("node1 own: %v", got)
	}
	if got := own("node2"); len(got) != 0 {
		t.Errorf("node2 own: %v", got)
	}
	if got := own("node3"); len(got) != 1 || got[0] != id3 {
		t.Errorf("node3 own: %v", got)
	}
	var sawForeign, foreignPort bool
	for _, f := range live.Nodes["node2"].Foreign {
		sawForeign = sawForeign || f.ID == foreign
	}
	for _, p := range live.Nodes["node2"].HostPorts {
		foreignPort = foreignPort || p.Port == 18231
	}
	if !sawForeign || !foreignPort {
		t.Errorf("node2: foreign container %v, its host port %v: %+v", sawForeign, foreignPort, live.Nodes["node2"].Foreign)
	}
	if ct := live.Nodes["node1"].Containers[0]; ct.State != "running" || ct.IP == "" || ct.Image != testcluster.ImageV1 {
		t.Errorf("node1 container: %+v", ct)
	}
}

// e2eOpenErr opens the cluster config (after edit) and returns the named
// node's error.
func e2eOpenErr(t *testing.T, c *testcluster.Cluster, node string, opts Options, edit func(cfg *config.Config)) (error, time.Duration) {
	t.Helper()
	cfg := clusterConfig(c, testcluster.ProjectName(t))
	if edit != nil {
		edit(cfg)
	}
	start := time.Now()
	sess := Open(context.Background(), cfg, opts)
	defer sess.Close()
	d := time.Since(start)
	for _, n := range c.Nodes {
		_, err := sess.Node(n.Name)
		if n.Name != node && err != nil {
			t.Errorf("%s is unreachable too: %v", n.Name, err)
		}
	}
	_, err := sess.Node(node)
	return err, d
}

func TestE2EWrongHostKey(t *testing.T) {
	c := testcluster.Require(t)
	c.SwapHostKey(t, "node2")
	err, _ := e2eOpenErr(t, c, "node2", clusterOptions(t), nil)
	wantOneLine(t, err, "node2", "CHANGED", c.KnownHosts+":")
	var he *transport.HostKeyError
	if !errors.As(err, &he) || he.Unknown {
		t.Errorf("not a changed-key error: %#v", err)
	}
}

func TestE2EMissingKnownHostsEntry(t *testing.T) {
	c := testcluster.Require(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	b, err := os.ReadFile(c.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, c.Node(t, "node2").Addr+" ") {
			keep = append(keep, l)
		}
	}
	os.WriteFile(kh, []byte(strings.Join(keep, "\n")), 0o600)
	err, _ = e2eOpenErr(t, c, "node2", clusterOptions(t), func(cfg *config.Config) {
		for _, n := range cfg.Nodes {
			n.KnownHosts = kh
		}
	})
	wantOneLine(t, err, "node2", "not known", c.Node(t, "node2").HostKeyFingerprint, "add this line to "+kh+": "+c.Node(t, "node2").Addr+" ssh-ed25519 ")
}

func TestE2EWrongUser(t *testing.T) {
	c := testcluster.Require(t)
	err, _ := e2eOpenErr(t, c, "node2", clusterOptions(t), func(cfg *config.Config) {
		cfg.Node("node2").User = "nobody"
	})
	wantOneLine(t, err, "node2", "authentication as nobody@"+c.Node(t, "node2").Addr+":22 failed")
}

func TestE2EMissingKeyFile(t *testing.T) {
	c := testcluster.Require(t)
	missing := filepath.Join(t.TempDir(), "id_ed25519")
	err, _ := e2eOpenErr(t, c, "node2", clusterOptions(t), func(cfg *config.Config) {
		cfg.Node("node2").IdentityFile = missing
	})
	wantOneLine(t, err, "node2", "identity file "+missing+" does not exist")
}

func TestE2ERefused(t *testing.T) {
	c := testcluster.Require(t)
	c.StopSSHD(t, "node2")
	err, d := e2eOpenErr(t, c, "node2", clusterOptions(t), nil)
	wantOneLine(t, err, "node2", "connection refused")
	if d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// An address nothing answers on: a blackholed node (packets dropped) and an
// unused address of the cluster's subnet. The connect timeout bounds both.
func TestE2ENoAnswer(t *testing.T) {
	c := testcluster.Require(t)
	opts := clusterOptions(t)
	opts.SSH.ConnectTimeout = 2 * time.Second
	t.Run("unused-address", func(t *testing.T) {
		err, d := e2eOpenErr(t, c, "node2", opts, func(cfg *config.Config) {
			cfg.Node("node2").Address = strings.TrimSuffix(c.BridgeIP, ".1") + ".99"
		})
		wantOneLine(t, err, "node2", "connect to ")
		if d > 6*time.Second { // the 2 s connect timeout, with room for a loaded machine
			t.Errorf("took %s", d)
		}
	})
	t.Run("blackholed", func(t *testing.T) {
		c.Blackhole(t, "node3")
		err, d := e2eOpenErr(t, c, "node3", opts, nil)
		wantOneLine(t, err, "node3", "connect to "+c.Node(t, "node3").Addr+":22: no answer within 2s")
		if d > 6*time.Second { // the 2 s connect timeout, with room for a loaded machine
			t.Errorf("took %s", d)
		}
	})
}

// A node that goes silent after connecting is reported by the keep-alive,
// with the default options, well under 30 s; the others are still read.
func TestE2ESilentNodeDefaultBound(t *testing.T) {
	c := testcluster.Require(t)
	// Exclusive before the session opens: while this process waits for
	// the cluster it holds no lock, and another package's fault would cut
	// the session's connections.
	c.Exclusive(t)
	ctx := context.Background()
	sess := Open(ctx, clusterConfig(c, testcluster.ProjectName(t)), clusterOptions(t))
	defer sess.Close()
	c.Blackhole(t, "node2")
	start := time.Now()
	live := sess.Gather(ctx)
	d := time.Since(start)
	if st := live.Nodes["node2"]; st.Reachable || !strings.HasPrefix(st.Error, "node2: ") {
		t.Fatalf("node2: %+v", st)
	}
	for _, n := range []string{"node1", "node3"} {
		if !live.Nodes[n].Reachable {
			t.Errorf("%s: %s", n, live.Nodes[n].Error)
		}
	}
	t.Logf("%s after %s", live.Nodes["node2"].Error, d)
	if d > 12*time.Second {
		t.Errorf("silent node reported after %s", d)
	}
}

func TestE2EConcurrentCalls(t *testing.T) {
	c := testcluster.Require(t)
	run := func(t *testing.T) {
		ctx := context.Background()
		cfg := clusterConfig(c, testcluster.ProjectName(t))
		cfg.Nodes = cfg.Nodes[:1]
		sess := Open(ctx, cfg, clusterOptions(t))
		defer sess.Close()
		n, err := sess.Node("node1")
		if err != nil {
			t.Fatal(err)
		}
		// 20 channels open at once, over sshd's MaxSessions (10 by
		// default, 1 in the second case): channels are not sessions.
		peak := openAtOnce(t, n, 20)
		start := time.Now()
		concurrentCalls(t, n, 100)
		t.Logf("100 concurrent calls: %s; %d engine channels open at once at most", time.Since(start), peak())
		if peak() < 20 {
			t.Errorf("at most %d engine channels were open at once; want 20, over sshd's MaxSessions", peak())
		}
		// The host-ports exec is a session: it works alongside.
		if _, err := n.HostPorts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("default-MaxSessions", run)
	t.Run("MaxSessions1-MaxStartups1", func(t *testing.T) {
		c.StartSSHD(t, "node1", "MaxSessions 1", "MaxStartups 1")
		run(t)
	})
}

// Twenty sessions in one process, each opening the three nodes, gathering
// (host ports too, so an exec session per node), dialling a port through
// each node and closing: afterwards berth's goroutines are back to what
// they were and no SSH connection is left on any node. (The soak in e2e
// runs a new berth process per apply, which would hide such leaks.)
func TestE2ESessionsLeakNothing(t *testing.T) {
	c := testcluster.Require(t)
	c.Exclusive(t) // the :22 counts must be this test's alone
	ctx := context.Background()
	cfg := clusterConfig(c, testcluster.ProjectName(t))
	cfg.Services = []*config.Service{{Name: "web", Image: testcluster.ImageV1, Ports: []config.Port{{Target: 8080, Protocol: "tcp"}}}}
	once := func(t *testing.T) {
		t.Helper()
		sess := Open(ctx, cfg, clusterOptions(t))
		defer sess.Close()
		live := sess.Gather(ctx)
		for _, n := range c.Nodes {
			st := live.Nodes[n.Name]
			if !st.Reachable || len(st.HostPorts) == 0 {
				t.Fatalf("%s: reachable %v, %d host ports: %s", n.Name, st.Reachable, len(st.HostPorts), st.Error)
			}
			node, err := sess.Node(n.Name)
			if err != nil {
				t.Fatal(err)
			}
			// The node's own sshd, dialled from the node (direct-tcpip).
			conn, err := node.DialContainer(ctx, n.Addr+":22")
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, 4)
			if _, err := io.ReadFull(conn, b); err != nil || string(b) != "SSH-" {
				t.Errorf("%s: dial through the node: %q %v", n.Name, b, err)
			}
			conn.Close()
		}
	}
	// settle waits until ok holds (what closed goes away in the
	// background), up to 10 s.
	settle := func(ok func() bool) bool {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if ok() {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
		}
	}
	sshConns := func() map[string]int {
		m := map[string]int{}
		for _, n := range c.Nodes {
			m[n.Name] = c.SSHConnections(t, n.Name)
		}
		return m
	}
	// The connections of the test processes that had the cluster until
	// now close in the background: idle is what is left once they have.
	var idle map[string]int
	settle(func() bool {
		idle = sshConns()
		n := 0
		for _, v := range idle {
			n += v
		}
		return n == 0
	})
	once(t) // warm up: anything started once per process
	var base int
	settle(func() bool {
		g := runtime.NumGoroutine()
		stable := g == base
		base = g
		return stable && fmt.Sprint(sshConns()) == fmt.Sprint(idle)
	})
	const sessions = 20
	for i := 0; i < sessions; i++ {
		once(t)
	}
	var now int
	if !settle(func() bool { now = runtime.NumGoroutine(); return now <= base }) {
		var dump strings.Builder
		pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Errorf("%d goroutines after %d sessions, %d before: berth leaks goroutines\n%s", now, sessions, base, dump.String())
	}
	var left map[string]int
	if !settle(func() bool { left = sshConns(); return fmt.Sprint(left) == fmt.Sprint(idle) }) {
		t.Errorf("established connections to :22 on the nodes: %v after %d sessions, %v before", left, sessions, idle)
	}
	t.Logf("%d sessions: goroutines %d -> %d; :22 connections on the nodes %v -> %v", sessions, base, now, idle, left)
}

func clusterSigner(t *testing.T, c *testcluster.Cluster) ed25519.PrivateKey {
	b, err := os.ReadFile(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return k
	case *ed25519.PrivateKey:
		return *k
	}
	t.Fatalf("cluster key is %T", k)
	return nil
}

func TestE2EAgent(t *testing.T) {
	c := testcluster.Require(t)
	sock, signs := startAgent(t, clusterSigner(t, c))
	opts := clusterOptions(t)
	opts.SSH.Environ = append(opts.SSH.Environ, "SSH_AUTH_SOCK="+sock)
	cfg := clusterConfig(c, testcluster.ProjectName(t))
	for _, n := range cfg.Nodes {
		n.IdentityFile = "" // the agent only
	}
	sess := Open(context.Background(), cfg, opts)
	defer sess.Close()
	for _, n := range c.Nodes {
		if _, err := sess.Node(n.Name); err != nil {
			t.Error(err)
		}
	}
	if signs.Load() != 3 {
		t.Errorf("agent signed %d times, want 3", signs.Load())
	}
}

// remoteClient returns $SSH_CLIENT as the node sees this session: the
// address the connection comes from.
func remoteClient(t *testing.T, sess *Session, node string) string {
	t.Helper()
	for _, c := range sess.pool.Conns() {
		if c.Label() == node {
			out, err := c.Run(context.Background(), "echo $SSH_CLIENT")
			if err != nil {
				t.Fatal(err)
			}
			return strings.Fields(string(out))[0]
		}
	}
	t.Fatalf("no connection for %s", node)
	return ""
}

// node1 is the bastion for node3: node3's connection comes from node1's
// address, and node1's own connection carries it.
func TestE2EProxyJump(t *testing.T) {
	c := testcluster.Require(t)
	ctx := context.Background()
	t.Run("jump-node", func(t *testing.T) {
		cfg := clusterConfig(c, testcluster.ProjectName(t))
		cfg.Node("node3").Jump = "node1"
		sess := Open(ctx, cfg, clusterOptions(t))
		defer sess.Close()
		live := sess.Gather(ctx)
		for _, n := range c.Nodes {
			if !live.Nodes[n.Name].Reachable {
				t.Fatalf("%s: %s", n.Name, live.Nodes[n.Name].Error)
			}
		}
		if got := remoteClient(t, sess, "node3"); got != c.Node(t, "node1").Addr {
			t.Errorf("node3 sees the connection from %s, want node1 %s", got, c.Node(t, "node1").Addr)
		}
		if got := remoteClient(t, sess, "node1"); got != c.BridgeIP {
			t.Errorf("node1 sees the connection from %s, want the host %s", got, c.BridgeIP)
		}
		if len(sess.pool.Conns()) != 3 {
			t.Errorf("%d SSH connections for 3 nodes", len(sess.pool.Conns()))
		}
	})
	t.Run("ssh-config-ProxyJump", func(t *testing.T) {
		opts := clusterOptions(t)
		opts.SSH.SSHConfigPath = filepath.Join(t.TempDir(), "config")
		os.WriteFile(opts.SSH.SSHConfigPath, []byte(fmt.Sprintf(`Host db
  HostName %s
  ProxyJump root@%s
  IdentityFile %s
`, c.Node(t, "node3").Addr, c.Node(t, "node1").Addr, c.Key)), 0o600)
		cfg := clusterConfig(c, testcluster.ProjectName(t))
		n3 := cfg.Node("node3")
		n3.Address, n3.IdentityFile = "db", ""
		cfg.Nodes = []*config.Node{n3}
		cfg.Project.SSH.IdentityFile = c.Key // for the jump host
		sess := Open(ctx, cfg, opts)
		defer sess.Close()
		if _, err := sess.Node("node3"); err != nil {
			t.Fatal(err)
		}
		if got := remoteClient(t, sess, "node3"); got != c.Node(t, "node1").Addr {
			t.Errorf("node3 sees the connection from %s", got)
		}
	})
}

func TestE2ETrustNewHosts(t *testing.T) {
	c := testcluster.Require(t)
	c.Exclusive(t) // SwapHostKey below: hold the cluster before the first session
	kh := filepath.Join(t.TempDir(), "known_hosts")
	opts := clusterOptions(t)
	opts.SSH.TrustNewHosts = true
	edit := func(cfg *config.Config) {
		for _, n := range cfg.Nodes {
			n.KnownHosts = kh
		}
	}
	cfg := clusterConfig(c, testcluster.ProjectName(t))
	edit(cfg)
	sess := Open(context.Background(), cfg, opts)
	for _, n := range c.Nodes {
		if _, err := sess.Node(n.Name); err != nil {
			t.Error(err)
		}
	}
	sess.Close()
	b, _ := os.ReadFile(kh)
	if strings.Count(string(b), "\n") != 3 {
		t.Fatalf("known_hosts after trusting 3 new hosts:\n%s", b)
	}
	// A recorded key now verifies without the option ...
	if err, _ := e2eOpenErr(t, c, "node1", clusterOptions(t), edit); err != nil {
		t.Fatal(err)
	}
	// ... and a changed one is refused even with it.
	c.SwapHostKey(t, "node2")
	err, _ := e2eOpenErr(t, c, "node2", opts, edit)
	wantOneLine(t, err, "node2", "CHANGED", kh+":")
	if b2, _ := os.ReadFile(kh); string(b2) != string(b) {
		t.Errorf("known_hosts changed for a changed key:\n%s", b2)
	}
}

// --- benchmarks ---

// BenchmarkCluster: a no-op gather of the three nodes (fresh Open, Gather,
// Close per iteration) next to OpenSSH's fresh `ssh node1 true`, in the same
// run; then API calls over one connection to node1.
func BenchmarkCluster(b *testing.B) {
	c := testcluster.Require(b)
	ctx := context.Background()
	cfg := clusterConfig(c, "bench")
	b.Run("gather-3-nodes", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sess := Open(ctx, cfg, clusterOptions(b))
			live := sess.Gather(ctx)
			sess.Close()
			for _, st := range live.Nodes {
				if !st.Reachable {
					b.Fatal(st.Error)
				}
			}
		}
	})
	// With a published port the gather also reads each node's listening
	// sockets (one exec session per node).
	withPorts := *cfg
	withPorts.Services = []*config.Service{{Name: "web", Image: testcluster.ImageV1, Ports: []config.Port{{Target: 8080, Protocol: "tcp"}}}}
	b.Run("gather-3-nodes-with-host-ports", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sess := Open(ctx, &withPorts, clusterOptions(b))
			live := sess.Gather(ctx)
			sess.Close()
			for _, st := range live.Nodes {
				if !st.Reachable || len(st.HostPorts) == 0 {
					b.Fatalf("%s: reachable %v, %d host ports: %s", st.Name, st.Reachable, len(st.HostPorts), st.Error)
				}
			}
		}
	})
	one := &config.Config{Project: cfg.Project, Nodes: cfg.Nodes[:1]}
	b.Run("gather-node1", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sess := Open(ctx, one, clusterOptions(b))
			live := sess.Gather(ctx)
			sess.Close()
			if !live.Nodes["node1"].Reachable {
				b.Fatal(live.Nodes["node1"].Error)
			}
		}
	})
	b.Run("openssh-ssh-node1-true", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			// A fresh connection whatever ~/.ssh/config says (no
			// ControlMaster): -F /dev/null and the options it needs.
			out, err := exec.Command("ssh", c.SSHArgs(c.Nodes[0].Name, "true")...).CombinedOutput()
			if err != nil {
				b.Fatalf("%v: %s", err, out)
			}
		}
	})
	for _, v := range []struct {
		name              string
		noQuickAck, fresh bool
	}{
		{"api-call/keepalive", false, false},
		{"api-call/fresh-channel/quickack", false, true},
		{"api-call/fresh-channel/no-quickack", true, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			opts := clusterOptions(b)
			opts.SSH.NoQuickAck = v.noQuickAck
			sess := Open(ctx, one, opts)
			defer sess.Close()
			n, err := sess.Node("node1")
			if err != nil {
				b.Fatal(err)
			}
			d := n.(*engine.Node)
			d.HTTPTransport().DisableKeepAlives = v.fresh
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := d.Ping(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
