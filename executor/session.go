package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/internal/msg"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/internal/trace"
	"github.com/berth-dev/berth/planner"
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
	// configured is the project's node set as an apply records it (nil
	// for a session built by NewSession: nothing is recorded).
	configured []planner.RecordedNode
	// removed are the nodes of the node set recorded by the project's last
	// apply that are no longer configured (see openRemoved), by name.
	removed map[string]planner.RecordedNode

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
		s.configured = append(s.configured, recordedNode(n))
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
	s.openRemoved(ctx, cfg, resolver, rerr)
	return s
}

// recordedNode is how a node's block is recorded in the project's node set:
// what reaches it again once the block is gone.
func recordedNode(n *config.Node) planner.RecordedNode {
	return planner.RecordedNode{Name: n.Name, Address: n.Address, Port: n.Port, User: n.User,
		IdentityFile: n.IdentityFile, KnownHosts: n.KnownHosts, DockerSocket: n.DockerSocket}
}

// openRemoved reads the project's node set recorded by its last apply (the
// newest audit record found on the reachable nodes that has one) and
// connects to the nodes in it that are no longer configured, at their
// recorded address: a plan removes the project's containers there. They
// join the session's names (so they are locked, gathered and audited like
// the others) and are gathered with Removed set.
func (s *Session) openRemoved(ctx context.Context, cfg *config.Config, r *transport.Resolver, rerr error) {
	configured := map[string]bool{}
	for _, n := range cfg.Nodes {
		configured[n.Name] = true
		configured[n.Address+"\x00"+strconv.Itoa(n.Port)] = true
	}
	for _, rn := range s.recordedNodeSet(ctx) {
		// A block renamed with its address kept is not a removed node.
		if configured[rn.Name] || configured[rn.Address+"\x00"+strconv.Itoa(rn.Port)] || rn.Name == "" || rn.Address == "" {
			continue
		}
		if s.removed == nil {
			s.removed = map[string]planner.RecordedNode{}
		}
		s.removed[rn.Name] = rn
		s.names = append(s.names, rn.Name)
		cn := &config.Node{Name: rn.Name, Address: rn.Address, Port: rn.Port, User: rn.User,
			IdentityFile: rn.IdentityFile, KnownHosts: rn.KnownHosts, DockerSocket: rn.DockerSocket}
		node, err := s.open(ctx, cn, r, rerr)
		if err != nil {
			s.errs[rn.Name] = &NodeError{Node: rn.Name, Err: err}
		} else {
			s.nodes[rn.Name] = node
		}
	}
	sort.Strings(s.names)
}

// recordedNodeSet is the node set of the newest audit record that has one,
// read from every connected node (an apply records on every node it
// locked, so a node unreachable then lacks the newest records); nil when
// there is none.
func (s *Session) recordedNodeSet(ctx context.Context) []planner.RecordedNode {
	if s.project == "" {
		return nil
	}
	defer trace.Span("read the recorded node set")()
	var (
		mu      sync.Mutex
		records []planner.AuditLabels
	)
	g := errgroup.Group{}
	g.SetLimit(s.opts.Parallelism)
	for _, name := range s.names {
		n, ok := s.nodes[name]
		if !ok {
			continue
		}
		g.Go(func() error {
			vs, err := n.Volumes(ctx, map[string]string{planner.LabelKind: planner.KindAudit, planner.LabelProject: s.project})
			if err != nil {
				return nil // the gather reports the node
			}
			mu.Lock()
			records = append(records, planner.ParseAudit(s.project, name, vs)...)
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	for _, rec := range sortAudit(records) {
		if rec.nodes != nil {
			return rec.nodes
		}
	}
	return nil
}

// Removed lists the nodes no longer configured that the session reaches
// (or tried to) because the project's last apply recorded them, sorted.
func (s *Session) Removed() []string {
	var out []string
	for _, name := range s.names {
		if _, ok := s.removed[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// NodeSet is the node set an apply records: the configured nodes, and the
// removed ones it may have left containers on (unreachable, or holding a
// container of the project that done, the apply's completed actions, did
// not remove), so that the next apply still reaches them.
func (s *Session) NodeSet(live *planner.Live, done []planner.Action) []planner.RecordedNode {
	if s.configured == nil {
		return nil
	}
	out := slices.Clone(s.configured)
	gone := map[string]bool{}
	for _, a := range done {
		if a.Old != nil && (a.Kind == planner.Delete || a.Kind == planner.Replace) {
			gone[a.Old.Node+"/"+a.Old.ID] = true
		}
	}
	for _, name := range s.Removed() {
		st := live.Node(name)
		pending := st == nil || !st.Reachable
		if !pending {
			for _, c := range st.Containers {
				if !gone[name+"/"+c.ID] {
					pending = true
				}
			}
		}
		if pending {
			out = append(out, s.removed[name])
		}
	}
	return out
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
