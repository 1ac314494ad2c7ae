package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/internal/msg"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/internal/trace"
)

// Defaults for Options; see there. The SSH ones are transport's and the
// request timeout the engine's, named here so that flags can show them.
const (
	DefaultParallelism = 10
	// DefaultReadParallelism bounds the read-only work (connecting to the
	// nodes, gathering them, listing their containers): wider than the
	// apply's, since a read changes nothing, and still bounded so that a
	// plan over thousands of nodes does not open thousands of
	// connections at once.
	DefaultReadParallelism = 32
	DefaultRequestTimeout  = engine.DefaultRequestTimeout
	DefaultConnectTimeout  = transport.DefaultConnectTimeout
	DefaultKeepAlive       = transport.DefaultKeepAlive
	DefaultKeepAliveMax    = transport.DefaultKeepAliveMax
)

// ErrNotFound is wrapped by a Node's error when the container or volume a
// method names does not exist. It is the only error a caller may read as
// "nothing there"; any other error is a transport or engine failure.
var ErrNotFound = engine.ErrNotFound

// Options tune how a Session reaches the nodes. The zero value means the
// defaults.
type Options struct {
	// Parallelism bounds how many nodes an apply (or destroy) changes at
	// once, and its image transfers (-parallelism). Default 10.
	Parallelism int
	// ReadParallelism bounds how many nodes are connected to, gathered
	// and listed at once, by every command. Default: Parallelism when
	// that is set, otherwise DefaultReadParallelism.
	ReadParallelism int
	// RequestTimeout bounds every Docker API request (a stop gets the grace
	// on top; image load and pull are bounded only by their context).
	// Default 20 s.
	RequestTimeout time.Duration
	// SSH tunes the SSH connections. Its Environ (nil: the process's
	// environment) is also where the local engine is found (DOCKER_HOST)
	// and its HomeDir where registry credentials are read.
	SSH transport.Options
}

func (o Options) withDefaults() Options {
	if o.ReadParallelism <= 0 {
		o.ReadParallelism = DefaultReadParallelism
		if o.Parallelism > 0 {
			o.ReadParallelism = o.Parallelism
		}
	}
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	o.SSH = o.SSH.WithDefaults()
	return o
}

// environ is the environment the session's nodes and images are found
// with.
func (o Options) environ() []string {
	if o.SSH.Environ != nil {
		return o.SSH.Environ
	}
	return os.Environ()
}

// NodeError is a node that could not be reached or read. Its message is one
// line that starts with the node's name.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return e.Node + ": " + msg.OneLine(e.Err.Error()) }
func (e *NodeError) Unwrap() error { return e.Err }

// Session holds one connection per configured node for the whole run.
// Nodes that could not be connected keep their error; the others are ready.
type Session struct {
	project string
	names   []string // sorted
	nodes   map[string]Node
	errs    map[string]error
	pool    *transport.Pool
	opts    Options
	// noHostPorts is set when no service publishes a port: a gather then
	// does not read the nodes' listening sockets.
	noHostPorts bool

	closeOnce sync.Once
}

// Open connects to every node of cfg in parallel (at most
// opts.ReadParallelism at once). It does not fail: a node that cannot be
// reached is recorded with its error (see Node and Gather).
func Open(ctx context.Context, cfg *config.Config, opts Options) *Session {
	opts = opts.withDefaults()
	s := &Session{
		project: cfg.Project.Name,
		nodes:   map[string]Node{},
		errs:    map[string]error{},
		pool:    transport.NewPool(opts.SSH),
		opts:    opts,
	}
	for _, n := range cfg.Nodes {
		s.names = append(s.names, n.Name)
	}
	sort.Strings(s.names)
	s.noHostPorts = true
	for _, svc := range cfg.Services {
		if len(svc.Ports) > 0 {
			s.noHostPorts = false
		}
	}

	endResolver := trace.Span("read ssh_config")
	resolver, rerr := transport.NewResolver(cfg, opts.SSH)
	endResolver()
	var mu sync.Mutex
	g := errgroup.Group{}
	g.SetLimit(opts.ReadParallelism)
	for _, n := range cfg.Nodes {
		g.Go(func() error {
			end := trace.Spanf("open %s", n.Name)
			node, err := s.open(ctx, n, resolver, rerr)
			end()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.errs[n.Name] = &NodeError{Node: n.Name, Err: err}
			} else {
				s.nodes[n.Name] = node
			}
			return nil
		})
	}
	g.Wait()
	return s
}

func (s *Session) open(ctx context.Context, n *config.Node, r *transport.Resolver, rerr error) (Node, error) {
	if n.IsLocal() {
		sock, err := engine.LocalSocket(n, s.opts.environ())
		if err != nil {
			return nil, err
		}
		return node(engine.NewLocal(ctx, n.Name, sock, s.opts.RequestTimeout))
	}
	if rerr != nil {
		return nil, rerr
	}
	socket := n.DockerSocket
	if socket == "" {
		socket = config.DefaultDockerSocket
	}
	t, err := r.Node(n)
	if err != nil {
		return nil, err
	}
	c, err := s.pool.Get(ctx, t)
	if err != nil {
		return nil, err
	}
	defer trace.Spanf("open %s: engine ping (API version)", n.Name)()
	return node(engine.NewSSH(ctx, n.Name, c, socket, s.opts.RequestTimeout))
}

// node turns a constructor's result into a Node that is nil on error (not
// a nil *engine.Node).
func node(n *engine.Node, err error) (Node, error) {
	if err != nil {
		return nil, err
	}
	return n, nil
}

// NewSession returns a session over nodes that are already connected (the
// fake in tests, or nodes built by hand).
func NewSession(project string, nodes map[string]Node) *Session {
	s := &Session{project: project, nodes: map[string]Node{}, errs: map[string]error{}, opts: Options{}.withDefaults()}
	for name, n := range nodes {
		s.names = append(s.names, name)
		s.nodes[name] = n
	}
	sort.Strings(s.names)
	return s
}

// Project is the project whose containers the session gathers.
func (s *Session) Project() string { return s.project }

// Names returns every configured node's name, sorted.
func (s *Session) Names() []string { return append([]string(nil), s.names...) }

// Node returns the connected node, or the *NodeError that says why it is
// unreachable.
func (s *Session) Node(name string) (Node, error) {
	if n, ok := s.nodes[name]; ok {
		return n, nil
	}
	if err, ok := s.errs[name]; ok {
		return nil, err
	}
	return nil, &NodeError{Node: name, Err: errors.New("not a configured node")}
}

// HostKeyMismatches returns the errors of the nodes (or their jump hosts)
// whose host key did not match the recorded one: changed, revoked, or not
// the pinned fingerprint. Nothing was sent to them (the check runs during
// the key exchange); a key that is merely unknown is not a mismatch.
func (s *Session) HostKeyMismatches() []error {
	var out []error
	for _, name := range s.names {
		var he *transport.HostKeyError
		if err := s.errs[name]; err != nil && errors.As(err, &he) && !he.Unknown {
			out = append(out, err)
		}
	}
	return out
}

// Close closes every node and connection.
func (s *Session) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		for _, name := range s.names {
			if n, ok := s.nodes[name]; ok {
				if err := n.Close(); err != nil {
					errs = append(errs, fmt.Errorf("close %s: %w", name, err))
				}
			}
		}
		if s.pool != nil {
			s.pool.Close()
		}
	})
	return errors.Join(errs...)
}
