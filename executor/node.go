// Package executor does all of berth's I/O: it gathers the live state of every
// node, applies a plan and rolls it back. It holds no decision logic: what to
// do comes from planner.Plan.
//
// The core owns the operations (Run: open, lock, gather, plan, confirm
// through a View, images, apply, audit, returning a typed Outcome), the
// Session (one connected Node per configured node), the gather, the lock,
// the audit records, apply with its health gates and its whole-plan
// rollback. It must not render anything for people (views live in
// cmd/berth) nor decide what to change (that is the planner's). The boundaries live in sub-packages that never import
// the core: transport (SSH), engine (the Docker Engine node), images (build,
// send, pull) and, for tests only, fake (an in-memory node) with nodetest
// (the Node contract as a suite).
package executor

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/planner"
)

// Node is the contract between the executor and one server's Docker engine.
// Implementations: engine.Node over SSH (one transport connection per node,
// the Docker API over direct-streamlocal channels) or on the local engine
// (address = "local"), and fake.Node, in memory, for unit tests. A shared
// suite (nodetest) runs against all of them.
//
// Every method honours ctx's deadline. An error from a method is a transport
// or engine error: callers must never read it as "nothing there".
type Node interface {
	// Name is the node's configured name.
	Name() string

	// Info returns the engine's facts.
	Info(ctx context.Context) (planner.EngineFacts, error)
	// Containers returns every container labelled for project (any state),
	// and the other containers that publish host ports.
	Containers(ctx context.Context, project string) (own, foreign []planner.Container, err error)
	// Inspect returns one container's current state.
	Inspect(ctx context.Context, id string) (planner.Container, error)
	// Images returns the images on the engine.
	Images(ctx context.Context) ([]planner.Image, error)
	// HostPorts returns the listening TCP and UDP sockets of the node's kernel.
	HostPorts(ctx context.Context) ([]planner.HostPort, error)
	// Volumes returns the named volumes whose labels match every given
	// label (an empty value matches any value of that key).
	Volumes(ctx context.Context, labels map[string]string) ([]planner.Volume, error)

	// CreateContainer creates (does not start) a container from spec under
	// name and returns its ID.
	CreateContainer(ctx context.Context, name string, spec *planner.ContainerSpec) (string, error)
	StartContainer(ctx context.Context, id string) error
	// StopContainer stops with the given grace before SIGKILL.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	RenameContainer(ctx context.Context, id, name string) error
	// RemoveContainer removes a container; anonymous volumes go with it, named
	// volumes never.
	RemoveContainer(ctx context.Context, id string) error
	// UpdateContainer changes resources and restart policy in place.
	UpdateContainer(ctx context.Context, id string, spec *planner.ContainerSpec) error
	// Logs returns the last lines of a container's output.
	Logs(ctx context.Context, id string, tail int) (string, error)
	// LogStream sends a container's output lines, stdout and stderr, each
	// with the engine's timestamp, to line (from one goroutine at a time)
	// and returns when the stream ends: at once without opts.Follow, else
	// when the container is no longer running, is removed, or ctx ends.
	// It has no deadline but ctx's.
	LogStream(ctx context.Context, id string, opts LogOptions, line func(LogLine)) error
	// Exec runs a command in a running container and returns its exit
	// code; it has no deadline but ctx's.
	Exec(ctx context.Context, id string, opts ExecOptions) (int, error)

	// CreateVolume creates a named volume with labels, or returns the existing
	// volume of that name with its own labels (atomic on the engine: the
	// first creator's labels win). Used for the lock.
	CreateVolume(ctx context.Context, name string, labels map[string]string) (planner.Volume, error)
	RemoveVolume(ctx context.Context, name string) error

	// Networks returns the networks labelled berth.project=project and any
	// network named planner.NetworkName(project), each with the IDs of the
	// containers attached to it (running ones), sorted by name.
	Networks(ctx context.Context, project string) ([]planner.Network, error)
	// CreateNetwork creates a bridge network with labels and returns its
	// ID; a network of that name already there is an error.
	CreateNetwork(ctx context.Context, name string, labels map[string]string) (string, error)
	// RemoveNetwork removes a network; it fails while a running container
	// is attached.
	RemoveNetwork(ctx context.Context, name string) error
	// ConnectNetwork attaches a container to a network with DNS aliases;
	// DisconnectNetwork detaches it.
	ConnectNetwork(ctx context.Context, network, containerID string, aliases []string) error
	DisconnectNetwork(ctx context.Context, network, containerID string) error

	// DialContainer opens a TCP connection to addr (the container's IP and
	// port) as seen from the node: a direct-tcpip channel over SSH, or a
	// plain dial for the local engine.
	DialContainer(ctx context.Context, addr string) (net.Conn, error)
	// DialUnix opens a connection to the unix socket at path on the node
	// (an ingress proxy's admin API): a direct-streamlocal channel over
	// SSH, as for the Docker socket, or a plain dial for the local engine.
	DialUnix(ctx context.Context, path string) (net.Conn, error)

	// LoadImage loads an image tarball (docker save format) into the engine.
	LoadImage(ctx context.Context, r io.Reader) error
	// PullImage pulls ref, with an optional base64 registry auth header.
	PullImage(ctx context.Context, ref, registryAuth string) error

	// Close releases the connection.
	Close() error
}

// The types of Node's streams (the engine's own: sub-packages never import
// the core).
type (
	LogOptions  = engine.LogOptions
	LogLine     = engine.LogLine
	ExecOptions = engine.ExecOptions
)
