package engine

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// localSocket picks the local engine's socket: the node's docker_socket when
// set to something other than the default, else DOCKER_HOST when it names a
// unix socket, else the default socket.
func localSocket(n *config.Node, environ []string) (string, error) {
	if n != nil && n.DockerSocket != "" && n.DockerSocket != config.DefaultDockerSocket {
		return n.DockerSocket, nil
	}
	if h := getenv(environ, "DOCKER_HOST"); h != "" {
		path, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			return "", fmt.Errorf("DOCKER_HOST=%s: berth's local node needs a unix:// socket (use a node with an SSH address for a remote engine)", h)
		}
		return path, nil
	}
	return config.DefaultDockerSocket, nil
}

// NewLocalNode returns the Node for the engine at the unix socket path on
// this machine: no SSH, host ports read from this machine's kernel, and
// containers dialled directly. It pings the engine before returning.
func NewLocalNode(ctx context.Context, name, socket string, requestTimeout time.Duration) (Node, error) {
	if requestTimeout <= 0 {
		requestTimeout = DefaultRequestTimeout
	}
	var d net.Dialer
	dial := func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "unix", socket)
	}
	n := &dockerNode{
		name:    name,
		timeout: requestTimeout,
		hostPorts: func(context.Context) ([]planner.HostPort, error) {
			return readLocalHostPorts()
		},
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	cli, tr, err := newDockerClient(n.engineDial(dial), "unix://"+socket)
	if err != nil {
		return nil, err
	}
	n.cli, n.tr = cli, tr
	if err := n.connect(ctx); err != nil {
		n.Close()
		return nil, fmt.Errorf("local engine at %s: %w", socket, err)
	}
	return n, nil
}
