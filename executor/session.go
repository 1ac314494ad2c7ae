package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/config"
)

// Options tune how a Session reaches the nodes. The zero value means the
// defaults.
type Options struct {
	// Parallelism bounds how many nodes are connected to and gathered at
	// once (-parallelism). Default 10.
	Parallelism int
	// TrustNewHosts accepts the host key of a host not in known_hosts and
	// records it there (-trust-new-hosts). A changed key is never accepted.
	TrustNewHosts bool
	// ConnectTimeout bounds the TCP connect and the SSH handshake of each
	// hop. Default 10 s.
	ConnectTimeout time.Duration
	// RequestTimeout bounds every Docker API request (a stop gets the grace
	// on top; image load and pull are bounded only by their context).
	// Default 20 s.
	RequestTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com probes on each
	// connection; when one is not answered within KeepAlive*KeepAliveMax
	// the connection is closed and everything in flight fails. Defaults
	// 2 s and 3: a node that goes silent is reported within about 8 s.
	// A negative KeepAlive disables the probes.
	KeepAlive    time.Duration
	KeepAliveMax int
	// SSHConfigPath is the OpenSSH client configuration to honour
	// (default HomeDir/.ssh/config).
	SSHConfigPath string
	// HomeDir replaces the user's home directory (~ in paths, ~/.ssh).
	// Default: HOME from Environ, else the process's home.
	HomeDir string
	// Environ replaces the process environment (SSH_AUTH_SOCK,
	// DOCKER_HOST, USER), os.Environ()-style.
	Environ []string
	// Stdin, Stderr and IsTerminal are where a passphrase is asked for:
	// on Stdin when IsTerminal, else on /dev/tty when there is one (unless
	// NoTTY), else the key fails with a message to use ssh-agent. Stderr
	// also gets a warning for each host key recorded by TrustNewHosts.
	Stdin      io.Reader
	Stderr     io.Writer
	IsTerminal bool
	NoTTY      bool
	// NoQuickAck leaves TCP_QUICKACK off (for measurements).
	NoQuickAck bool
}

func (o Options) withDefaults() Options {
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.KeepAliveMax <= 0 {
		o.KeepAliveMax = DefaultKeepAliveMax
	}
	return o
}

// NodeError is a node that could not be reached or read. Its message is one
// line that starts with the node's name.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return e.Node + ": " + oneLine(e.Err.Error()) }
func (e *NodeError) Unwrap() error { return e.Err }

// Session holds one connection per configured node for the whole run.
// Nodes that could not be connected keep their error; the others are ready.
type Session struct {
	project string
	names   []string // sorted
	nodes   map[string]Node
	errs    map[string]error
	pool    *sshPool
	opts    Options
	// noHostPorts is set when no service publishes a port: a gather then
	// does not read the nodes' listening sockets.
	noHostPorts bool

	closeOnce sync.Once
}

// Open connects to every node of cfg in parallel (at most
// opts.Parallelism at once). It does not fail: a node that cannot be
// reached is recorded with its error (see Node and Gather).
func Open(ctx context.Context, cfg *config.Config, opts Options) *Session {
	opts = opts.withDefaults()
	s := &Session{
		project: cfg.Project.Name,
		nodes:   map[string]Node{},
		errs:    map[string]error{},
		pool:    newSSHPool(opts),
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

	resolver, rerr := newSSHResolver(cfg, opts)
	var mu sync.Mutex
	g := errgroup.Group{}
	g.SetLimit(opts.Parallelism)
	for _, n := range cfg.Nodes {
		g.Go(func() error {
			node, err := s.open(ctx, n, resolver, rerr)
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

func (s *Session) open(ctx context.Context, n *config.Node, r *sshResolver, rerr error) (Node, error) {
	socket := n.DockerSocket
	if n.IsLocal() {
		env := s.opts.Environ
		if env == nil {
			env = os.Environ()
		}
		sock, err := localSocket(n, env)
		if err != nil {
			return nil, err
		}
		return NewLocalNode(ctx, n.Name, sock, s.opts.RequestTimeout)
	}
	if rerr != nil {
		return nil, rerr
	}
	if socket == "" {
		socket = config.DefaultDockerSocket
	}
	t, err := r.node(n)
	if err != nil {
		return nil, err
	}
	c, err := s.pool.get(ctx, t)
	if err != nil {
		return nil, err
	}
	node := newSSHNode(n.Name, c, socket, s.opts.RequestTimeout)
	if err := node.connect(ctx); err != nil {
		node.Close()
		return nil, fmt.Errorf("docker engine at %s over SSH: %w", socket, err)
	}
	return node, nil
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
		var he *HostKeyError
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
			s.pool.closeAll()
		}
	})
	return errors.Join(errs...)
}
