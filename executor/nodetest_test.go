package executor_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/executor/nodetest"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/internal/testcluster"
)

// Both implementations satisfy the contract.
var (
	_ executor.Node = (*fake.Node)(nil)
	_ executor.Node = (*engine.Node)(nil)
)

func TestFakeNodeSuite(t *testing.T) {
	nodetest.Run(t, func(t *testing.T) executor.Node {
		f := fake.NewNode("fake1")
		f.AddImage(nodetest.Image)
		return f
	})
}

// The local engine (this machine's /var/run/docker.sock).
func TestLocalNodeSuite(t *testing.T) {
	if _, err := os.Stat("/var/run/docker.sock"); err != nil {
		t.Skip("no Docker engine at /var/run/docker.sock")
	}
	// The suite's LoadImage case (also run by TestSSHNodeSuite against this
	// engine) leaves its tiny image: remove it.
	t.Cleanup(func() { exec.Command("docker", "rmi", nodetest.LoadTag).Run() })
	nodetest.Run(t, func(t *testing.T) executor.Node {
		n, err := engine.NewLocal(context.Background(), "local", "/var/run/docker.sock", 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	})
}

// A node over SSH: a throwaway sshd on 127.0.0.1 in front of this machine's
// engine (the test cluster's nodes run it in e2e_test.go).
func TestSSHNodeSuite(t *testing.T) {
	t.Cleanup(func() { exec.Command("docker", "rmi", nodetest.LoadTag).Run() })
	nodetest.Run(t, executor.NewSSHDNodeForTest)
}

// A test cluster node over SSH (BERTH_E2E=1).
func TestClusterNodeSuite(t *testing.T) {
	c := testcluster.Require(t)
	n := c.Node(t, "node1")
	nodetest.Run(t, func(t *testing.T) executor.Node {
		cfg := &config.Config{Project: config.Project{Name: "nodetest"}, Nodes: []*config.Node{{
			Name: n.Name, Address: n.Addr, User: c.User, IdentityFile: c.Key, KnownHosts: c.KnownHosts,
		}}}
		sess := executor.Open(context.Background(), cfg, executor.Options{SSH: transport.Options{HomeDir: t.TempDir(), Environ: []string{}, NoTTY: true}})
		t.Cleanup(func() { sess.Close() })
		node, err := sess.Node(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		return node
	})
}

// DialUnix reaches the engine's own socket: over SSH a direct-streamlocal
// channel, locally a plain dial.
func TestLocalNodeDialUnix(t *testing.T) {
	if _, err := os.Stat("/var/run/docker.sock"); err != nil {
		t.Skip("no Docker engine at /var/run/docker.sock")
	}
	n, err := engine.NewLocal(context.Background(), "local", "/var/run/docker.sock", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	nodetest.DialUnixPing(t, n, "/var/run/docker.sock")
}

func TestSSHNodeDialUnix(t *testing.T) {
	n := executor.NewSSHDNodeForTest(t)
	defer n.Close()
	nodetest.DialUnixPing(t, n, "/var/run/docker.sock")
}

func TestClusterNodeDialUnix(t *testing.T) {
	c := testcluster.Require(t)
	n := c.Node(t, "node1")
	cfg := &config.Config{Project: config.Project{Name: "nodetest"}, Nodes: []*config.Node{{
		Name: n.Name, Address: n.Addr, User: c.User, IdentityFile: c.Key, KnownHosts: c.KnownHosts,
	}}}
	sess := executor.Open(context.Background(), cfg, executor.Options{SSH: transport.Options{HomeDir: t.TempDir(), Environ: []string{}, NoTTY: true}})
	defer sess.Close()
	node, err := sess.Node(n.Name)
	if err != nil {
		t.Fatal(err)
	}
	nodetest.DialUnixPing(t, node, config.DefaultDockerSocket)
}

// The fake's DialUnix calls the dialer a test sets.
func TestFakeNodeDialUnix(t *testing.T) {
	f := fake.NewNode("fake1")
	f.SetUnixDialer(func(ctx context.Context, path string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			req, err := http.ReadRequest(bufio.NewReader(server))
			if err != nil || req.URL.Path != "/_ping" || path != "/run/docker.sock" {
				return
			}
			resp := &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, ContentLength: 2, Body: io.NopCloser(strings.NewReader("OK"))}
			resp.Write(server)
		}()
		return client, nil
	})
	nodetest.DialUnixPing(t, f, "/run/docker.sock")
	f.SetUnixDialer(nil)
	if c, err := f.DialUnix(context.Background(), "/run/docker.sock"); err == nil {
		c.Close()
		t.Error("DialUnix with no dialer set succeeded")
	}
}
