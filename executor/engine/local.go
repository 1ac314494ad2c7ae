package engine

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/internal/env"
	"github.com/berth-dev/berth/planner"
)

// LocalSocket picks the local engine's socket: the node's docker_socket when
// set to something other than the default, else DOCKER_HOST when it names a
// unix socket, else the default socket.
func LocalSocket(n *config.Node, environ []string) (string, error) {
	if n != nil && n.DockerSocket != "" && n.DockerSocket != config.DefaultDockerSocket {
		return n.DockerSocket, nil
	}
	if h := env.Get(environ, "DOCKER_HOST"); h != "" {
		path, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			return "", fmt.Errorf("DOCKER_HOST=%s: berth's local node needs a unix:// socket (use a node with an SSH address for a remote engine)", h)
		}
		return path, nil
	}
	return config.DefaultDockerSocket, nil
}

// NewLocal returns the Node for the engine at the unix socket path on this
// machine: no SSH, host ports read from this machine's kernel, and
// containers and unix sockets dialled directly. It pings the engine before returning.
func NewLocal(ctx context.Context, name, socket string, requestTimeout time.Duration) (*Node, error) {
	if requestTimeout <= 0 {
		requestTimeout = DefaultRequestTimeout
	}
	var d net.Dialer
	dial := func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "unix", socket)
	}
	n := &Node{
		name:    name,
		timeout: requestTimeout,
		hostPorts: func(context.Context) ([]planner.HostPort, error) {
			return readLocalHostPorts()
		},
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
		unixDial: func(ctx context.Context, path string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
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

// OpenLocal connects to the Docker engine of the machine running berth, the
// one images are built on and sent from: DOCKER_HOST in environ when it
// names a unix socket, else the default socket.
func OpenLocal(ctx context.Context, environ []string) (*Node, error) {
	sock, err := LocalSocket(&config.Node{Name: "local", Address: config.LocalAddress}, environ)
	if err != nil {
		return nil, err
	}
	return NewLocal(ctx, "local", sock, DefaultRequestTimeout)
}
