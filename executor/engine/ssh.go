package engine

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/planner"
)

// NewSSH returns the Node for the engine at socket on the host c is connected
// to: the Docker API over direct-streamlocal channels, kept alive and
// reused; host ports read with one exec session; containers dialled over
// direct-tcpip channels, other unix sockets over direct-streamlocal ones.
// It pings the engine before returning. Closing the node releases c.
func NewSSH(ctx context.Context, name string, c *transport.Conn, socket string, requestTimeout time.Duration) (*Node, error) {
	if requestTimeout <= 0 {
		requestTimeout = DefaultRequestTimeout
	}
	var closeOnce sync.Once
	n := &Node{
		name:      name,
		timeout:   requestTimeout,
		broken:    c.Failure,
		hostPorts: func(ctx context.Context) ([]planner.HostPort, error) { return sshHostPorts(ctx, c) },
		dial:      c.DialTCP,
		unixDial:  c.DialSocket,
		close: func() error {
			closeOnce.Do(c.Release)
			return nil
		},
	}
	dial := func(ctx context.Context) (net.Conn, error) { return c.DialSocket(ctx, socket) }
	cli, tr, err := newDockerClient(n.engineDial(dial), "unix://"+socket)
	if err != nil {
		// Only a malformed host makes this fail; the socket path is
		// checked by the configuration.
		panic(err)
	}
	n.cli, n.tr = cli, tr
	if err := n.connect(ctx); err != nil {
		n.Close()
		return nil, fmt.Errorf("docker engine at %s over SSH: %w", socket, err)
	}
	return n, nil
}

// sshHostPorts reads the node's socket tables in one exec session.
func sshHostPorts(ctx context.Context, c *transport.Conn) ([]planner.HostPort, error) {
	out, err := c.Run(ctx, hostPortsCommand)
	if err != nil && !transport.IsExitError(err) {
		return nil, err
	}
	// cat exits 1 when an IPv6 table is missing; the parse insists on the
	// TCP table.
	ports, perr := parseHostPortsOutput(out)
	if perr != nil && err != nil {
		return nil, err
	}
	return ports, perr
}
