// Package testcluster gives end-to-end tests the project's local test
// cluster: three nodes (node1..node3), each a network namespace with its own
// OpenSSH server and Docker engine, brought up by scripts/testcluster (and by
// scripts/test, the project's test command).
//
// A test starts with Require, which skips unless BERTH_E2E=1 and fails when
// the cluster is not up:
//
//	c := testcluster.Require(t)
//	dir := c.ConfigDir(t, map[string]string{"app.hcl": `service "web" { ... }`})
//	out, err := exec.Command(testcluster.BuildBerth(t), "apply", "-auto-approve", dir).CombinedOutput()
//
// ConfigDir's cleanup removes every container, volume and network the test's
// project left on any node. The fault helpers (StopSSHD, Blackhole, ...) undo
// themselves when the test ends, and hold a cluster-wide lock meanwhile so
// that tests in other packages, which run in parallel processes, never see a
// fault they did not ask for.
package testcluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// SkipMessage is the reason e2e tests give when BERTH_E2E is not set.
const SkipMessage = "e2e: BERTH_E2E is not set; run scripts/test to bring up the test cluster"

// ProjectLabel is the container, volume and network label that names a
// berth project; ConfigDir's cleanup removes what carries the test's project.
const ProjectLabel = "berth.project"

// Images present on every node (and the host engine) after up.
const (
	ImageV1     = "berth-test/echo:v1"
	ImageV2     = "berth-test/echo:v2"
	ImageBroken = "berth-test/echo:broken"
)

// Node is one node of the cluster.
type Node struct {
	Name               string // node1, node2, node3
	Addr               string // IP address on the cluster bridge; sshd listens on port 22
	DockerHost         string // unix:///.../.testcluster/NODE/docker.sock: the engine, from the host
	Netns              string // network namespace name (ip netns exec NETNS ...)
	HostKeyFingerprint string // SHA256:... of the node's ed25519 host key
}

// Cluster describes the running cluster, as read from .testcluster/env.
type Cluster struct {
	Dir        string // absolute path of .testcluster
	Nodes      []Node
	Key        string // client private key (ed25519) accepted by every node for User
	KnownHosts string // known_hosts file with one line per node address
	User       string // root
	BridgeIP   string // the host's address on the cluster bridge

	mu      sync.Mutex
	dockers map[string]*client.Client
}

var (
	openOnce sync.Once
	opened   *Cluster
	openErr  error
)

// Require returns the running test cluster. It skips the test when BERTH_E2E
// is not 1, and fails it when BERTH_E2E=1 but the cluster is not up: CI must
// not pass by skipping. The cluster's directory is $BERTH_TC_DIR, else
// .testcluster at the repository root.
//
// The first call in a test process takes a shared lock on the cluster that
// lasts until the process exits; the fault helpers turn it exclusive for the
// duration of the test that uses them. Call Require first thing in a
// top-level test: while another process waits to inject a fault, Require
// lets it go first.
func Require(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv("BERTH_E2E") != "1" {
		t.Skip(SkipMessage)
	}
	openOnce.Do(func() { opened, openErr = open() })
	if openErr != nil {
		t.Fatalf("e2e: the test cluster is not usable: %v", openErr)
	}
	yieldToFaults(t)
	return opened
}

func open() (*Cluster, error) {
	dir := os.Getenv("BERTH_TC_DIR")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, ".testcluster")
	}
	c, err := Load(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (run scripts/testcluster up, as root)", err)
	}
	if err := lockShared(filepath.Join(c.Dir, "lock"), 10*time.Minute); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w (scripts/testcluster status tells more; scripts/testcluster up repairs it)", err)
	}
	return c, nil
}

// Load reads the cluster description that scripts/testcluster up wrote to
// DIR/env. It does not check that the nodes answer.
func Load(dir string) (*Cluster, error) {
	env, err := readEnv(filepath.Join(dir, "env"))
	if err != nil {
		return nil, fmt.Errorf("read test cluster description: %w", err)
	}
	get := func(k string) (string, error) {
		v, ok := env[k]
		if !ok || v == "" {
			return "", fmt.Errorf("%s: %s is missing", filepath.Join(dir, "env"), k)
		}
		return v, nil
	}
	c := &Cluster{dockers: map[string]*client.Client{}}
	for k, p := range map[string]*string{
		"BERTH_TC_DIR": &c.Dir, "BERTH_TC_KEY": &c.Key, "BERTH_TC_KNOWN_HOSTS": &c.KnownHosts,
		"BERTH_TC_USER": &c.User, "BERTH_TC_BRIDGE_IP": &c.BridgeIP,
	} {
		if *p, err = get(k); err != nil {
			return nil, err
		}
	}
	names, err := get("BERTH_TC_NODES")
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Fields(names) {
		n := Node{Name: name}
		pre := "BERTH_TC_" + strings.ToUpper(name) + "_"
		for k, p := range map[string]*string{
			"ADDR": &n.Addr, "DOCKER_HOST": &n.DockerHost, "NETNS": &n.Netns, "HOSTKEY_FPR": &n.HostKeyFingerprint,
		} {
			if *p, err = get(pre + k); err != nil {
				return nil, err
			}
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// readEnv parses KEY=value lines; values may be single- or double-quoted.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env, sc.Err()
}

// check fails unless every node's engine answers on its host socket and its
// sshd greets on port 22.
func (c *Cluster) check() error {
	var errs []error
	for _, n := range c.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.docker(n.Name).Ping(ctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: engine at %s does not answer: %w", n.Name, n.DockerHost, err))
		}
		if err := sshBanner(n.Addr, 3*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("%s: sshd at %s:22: %w", n.Name, n.Addr, err))
		}
	}
	return errors.Join(errs...)
}

func sshBanner(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "22"), timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	b := make([]byte, 4)
	if _, err := conn.Read(b); err != nil {
		return fmt.Errorf("no greeting: %w", err)
	}
	if string(b) != "SSH-" {
		return fmt.Errorf("greeting %q is not SSH", b)
	}
	return nil
}

// Node returns the named node, failing the test if there is none.
func (c *Cluster) Node(t testing.TB, name string) Node {
	t.Helper()
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("test cluster has no node %q", name)
	return Node{}
}

// NodesHCL returns the content of nodes.hcl: a node block per node, with
// address, user, identity_file, known_hosts and labels zone (a, b, c) and role
// (node1 and node2 "web", node3 "db").
func (c *Cluster) NodesHCL() string {
	b, err := os.ReadFile(filepath.Join(c.Dir, "nodes.hcl"))
	if err != nil {
		panic(fmt.Sprintf("testcluster: %v", err)) // up writes it with env; Require has read env
	}
	return string(b)
}

// ConfigDir returns a fresh configuration directory holding nodes.hcl and the
// given files (name relative to the directory, content). Its base name is a
// new project name unique to this test (see ProjectName), and when the test
// ends every container, volume and network labelled with that project is
// removed from every node.
func (c *Cluster) ConfigDir(t testing.TB, files map[string]string) string {
	t.Helper()
	return c.ConfigDirProject(t, ProjectName(t), files)
}

// ConfigDirProject is ConfigDir with the project name chosen by the test; it
// is also the directory's base name. A file named nodes.hcl in files
// replaces the cluster's.
func (c *Cluster) ConfigDirProject(t testing.TB, project string, files map[string]string) string {
	t.Helper()
	if project == "" || strings.ContainsAny(project, `/\`) || project == "." || project == ".." {
		t.Fatalf("testcluster: %q cannot be a project directory name", project)
	}
	dir := filepath.Join(t.TempDir(), project)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nodes.hcl", c.NodesHCL())
	for name, content := range files {
		write(name, content)
	}
	t.Cleanup(func() { c.RemoveProject(t, project) })
	return dir
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// ProjectName returns a new valid project name for the test:
// "t-<test name without Test, lower case, [a-z0-9-] only, at most 24
// characters>-<6 hex digits>", e.g. t-applyrollback-3fa2c1.
func ProjectName(t testing.TB) string {
	name := strings.TrimPrefix(strings.ToLower(t.Name()), "test")
	name = strings.Trim(unsafeChars.ReplaceAllString(name, "-"), "-")
	if len(name) > 24 {
		name = strings.TrimRight(name[:24], "-")
	}
	if name == "" {
		name = "x"
	}
	b := make([]byte, 3)
	rand.Read(b)
	return "t-" + name + "-" + hex.EncodeToString(b)
}

// RemoveProject removes, on every node, the containers (with their anonymous
// volumes), volumes and networks labelled berth.project=PROJECT, berth's
// lock and audit volumes included. Failures are reported with t.Errorf.
func (c *Cluster) RemoveProject(t testing.TB, project string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", ProjectLabel+"="+project))
	var wg sync.WaitGroup
	errc := make(chan error, len(c.Nodes))
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.removeProject(ctx, n.Name, f); err != nil {
				errc <- fmt.Errorf("%s: %w", n.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("testcluster: clean up project %s: %v", project, err)
	}
}

func (c *Cluster) removeProject(ctx context.Context, node string, f filters.Args) error {
	cli := c.docker(node)
	var errs []error
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, ct := range cs {
		if err := cli.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", ct.ID[:12], err))
		}
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list volumes: %w", err))...)
	}
	for _, v := range vs.Volumes {
		if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
		}
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, nw := range ns {
		// An endpoint can outlive its container's removal for a moment
		// (the engine releases it after ContainerRemove returns), or
		// belong to a container another project's test put there: force
		// every endpoint off first, so the removal cannot meet "active
		// endpoints".
		if in, err := cli.NetworkInspect(ctx, nw.ID, network.InspectOptions{}); err == nil {
			for id := range in.Containers {
				_ = cli.NetworkDisconnect(ctx, nw.ID, id, true)
			}
		}
		if err := cli.NetworkRemove(ctx, nw.ID); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Docker returns a Docker API client for the node's engine, reached directly
// through the host-side socket (not over SSH), for a test to inspect or
// prepare state. The client is shared; do not close it.
func (c *Cluster) Docker(t testing.TB, node string) *client.Client {
	t.Helper()
	c.Node(t, node)
	return c.docker(node)
}

func (c *Cluster) docker(node string) *client.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cli, ok := c.dockers[node]; ok {
		return cli
	}
	var host string
	for _, n := range c.Nodes {
		if n.Name == node {
			host = n.DockerHost
		}
	}
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		panic(fmt.Sprintf("testcluster: docker client for %s: %v", node, err)) // only on a malformed host
	}
	c.dockers[node] = cli
	return cli
}

// SSHArgs returns the OpenSSH client arguments that reach the node as User
// with the cluster's key and strict host key checking against KnownHosts,
// ignoring ~/.ssh/config and /etc/ssh/ssh_config (-F /dev/null) and never
// sharing a connection (ControlMaster no, ControlPath none: each run is a
// fresh connection), followed by the remote command args.
func (c *Cluster) SSHArgs(node string, args ...string) []string {
	var addr string
	for _, n := range c.Nodes {
		if n.Name == node {
			addr = n.Addr
		}
	}
	return append([]string{
		"-F", "/dev/null", "-i", c.Key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + c.KnownHosts,
		"-o", "ControlMaster=no", "-o", "ControlPath=none",
		"-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", c.User + "@" + addr,
	}, args...)
}

// SSHCommand returns an ssh command that runs args on the node (see SSHArgs).
func (c *Cluster) SSHCommand(ctx context.Context, node string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ssh", c.SSHArgs(node, args...)...)
}

// RepoRoot returns the directory holding go.mod, found by walking up from the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

var (
	berthOnce sync.Once
	berthPath string
	berthErr  error
)

// BuildBerth returns the path of a berth binary: $BERTH_BIN when set, else
// ./cmd/berth built once per test process.
func BuildBerth(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_BIN"); p != "" {
		return p
	}
	berthOnce.Do(func() { berthPath, berthErr = buildBerth() })
	if berthErr != nil {
		t.Fatalf("build berth: %v", berthErr)
	}
	return berthPath
}

// buildBerth builds into a directory of its own per checkout, renaming the
// result into place so that parallel test processes never see a partial file.
func buildBerth() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "berth-e2e-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "berth-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	gobin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	cmd := exec.Command(gobin, "build", "-o", tmp.Name(), "./cmd/berth")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/berth: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "berth")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}
