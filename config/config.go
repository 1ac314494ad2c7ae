// Package config reads a berth configuration directory (every *.hcl file in it)
// into a typed desired state, reporting every problem as hcl.Diagnostics.
//
// It does no I/O beyond reading the configuration and variable files: no
// network, no Docker, no SSH. Placement expressions are kept as hcl.Expression
// values and evaluated later, per node, by the planner (see NodeEvalContext).
package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// LocalAddress is the node address that means "the local Docker engine, no SSH".
const LocalAddress = "local"

// Defaults that a user of Swarm or Terraform would expect. They are documented in
// the README's language reference; change both together.
const (
	DefaultSSHPort         = 22
	DefaultDockerSocket    = "/var/run/docker.sock"
	DefaultReplicas        = 1
	DefaultRestart         = "unless-stopped"
	DefaultStopGracePeriod = 10 * time.Second
	DefaultProtocol        = "tcp"
	DefaultPull            = "missing"

	DefaultUpdateParallelism = 1
	DefaultUpdateOrder       = "start-first"
	DefaultFailureAction     = "rollback"
	DefaultUpdateMonitor     = 5 * time.Second
	DefaultUpdateDelay       = 0

	DefaultHealthInterval    = 1 * time.Second
	DefaultHealthTimeout     = 2 * time.Second
	DefaultHealthRetries     = 3
	DefaultHealthStartPeriod = 0
	// DefaultHealthDeadline bounds how long apply waits for a replica to become
	// healthy before it counts the replica as failed.
	DefaultHealthDeadline = 60 * time.Second

	// DefaultIngressImage is the proxy image of the ingress (Caddy).
	DefaultIngressImage = "caddy:2.11.9"
	DefaultIngressTLS   = "off"

	// AutoPortMin and AutoPortMax bound the published ports berth assigns when
	// a port block leaves `published` out (Swarm's range).
	AutoPortMin = 30000
	AutoPortMax = 32767
)

// Config is a whole configuration directory, resolved.
type Config struct {
	// Dir is the directory the configuration was read from (as given).
	Dir string
	// Files holds every parsed file by name, for rendering diagnostics with
	// source snippets (hcl.NewDiagnosticTextWriter).
	Files map[string]*hcl.File

	Project   Project
	Variables []*Variable // sorted by name
	Nodes     []*Node     // sorted by name
	Services  []*Service  // sorted by name

	// SensitiveValues holds the string form of every sensitive value in the
	// configuration (sensitive variables and the env values derived from them),
	// so that output can be redacted. Never print it.
	SensitiveValues []string
}

// Node returns the node with the given name, or nil.
func (c *Config) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Service returns the service with the given name, or nil.
func (c *Config) Service(name string) *Service {
	for _, s := range c.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Project names the set of containers this configuration owns.
type Project struct {
	Name string // default: the base name of the configuration directory
	SSH  SSHDefaults
	// Swarm is set when the project runs on Docker Swarm (a swarm block).
	Swarm *Swarm
	// Ingress is the project's ingress block, or nil when absent (the
	// defaults then apply as soon as a service has an ingress port).
	Ingress *Ingress
	// DeclRange is the project block's header, or an empty range when the
	// block is absent.
	DeclRange hcl.Range
}

// IngressServiceName is the service name of berth's ingress routers (the
// proxies that hold the routes) and IngressEdgeServiceName that of its
// edge proxies (the ones that listen on the ingress ports); no configured
// service may take either.
const (
	IngressServiceName     = "berth-ingress"
	IngressEdgeServiceName = "berth-ingress-edge"
)

// Ingress configures the proxy that serves the services' ingress ports on
// every ingress node (the routing mesh).
type Ingress struct {
	Image string // default DefaultIngressImage
	// Nodes is a bool expression over `node` (like a placement constraint):
	// the nodes that run a proxy; nil means every node.
	Nodes hcl.Expression
	TLS   string // "off" | "internal" | "auto"

	DeclRange  hcl.Range
	NodesRange hcl.Range
}

// IngressOf returns the project's ingress settings, defaults filled in.
func (c *Config) IngressOf() Ingress {
	in := Ingress{Image: DefaultIngressImage, TLS: DefaultIngressTLS}
	if c.Project.Ingress != nil {
		in = *c.Project.Ingress
		if in.Image == "" {
			in.Image = DefaultIngressImage
		}
		if in.TLS == "" {
			in.TLS = DefaultIngressTLS
		}
	}
	return in
}

// HasIngress reports whether any service has an ingress port.
func (c *Config) HasIngress() bool {
	for _, s := range c.Services {
		for _, p := range s.Ports {
			if p.Ingress() {
				return true
			}
		}
	}
	return false
}

// SSHDefaults are the project-wide defaults for every node's SSH settings.
type SSHDefaults struct {
	User         string
	Port         int
	IdentityFile string
	KnownHosts   string
}

// Variable is a declared input variable with its resolved value.
type Variable struct {
	Name        string
	Description string
	Sensitive   bool
	// Source says where the value came from: "default", "var-file FILE",
	// "env BERTH_VAR_x", "-var".
	Source    string
	DeclRange hcl.Range

	// Type is the declared type constraint (cty.DynamicPseudoType: any).
	Type cty.Type
	// Value is the resolved value, unmarked: check Sensitive before showing
	// it. cty.NilVal when the variable has no value (or a bad one).
	Value cty.Value
}

// Node is a server running a Docker engine, reachable over SSH (or the local
// engine when Address is LocalAddress).
type Node struct {
	Name         string
	Address      string
	Port         int    // 0 means: from ~/.ssh/config, else 22
	User         string // "" means: from ~/.ssh/config, else the current user
	IdentityFile string
	KnownHosts   string // "" means ~/.ssh/known_hosts
	HostKey      string // optional pinned fingerprint, "SHA256:..."
	Jump         string // optional bastion: a node name, or [user@]host[:port]
	DockerSocket string // default DefaultDockerSocket
	Labels       map[string]string
	// PrivateAddress is where the node's replicas are reached by other
	// services (service.NAME.address): private_address, else Address, else
	// 127.0.0.1 for the local engine.
	PrivateAddress string
	// Drain takes the node out of placement: its replicas move to other
	// nodes and no new replica goes there. It stays reachable and read.
	Drain bool

	DeclRange hcl.Range
}

// IsLocal reports whether the node is the local Docker engine (no SSH).
func (n *Node) IsLocal() bool { return n.Address == LocalAddress }

// Service is a set of identical replicas.
type Service struct {
	Name  string
	Image string // may be empty when Build is set
	Build *Build
	Pull  string // "missing" | "always" | "never"

	Replicas        int
	Command         []string // nil: the image's default
	Entrypoint      []string // nil: the image's default
	Env             map[string]EnvVar
	Labels          map[string]string
	Restart         string // "no" | "always" | "on-failure" | "unless-stopped"
	StopGracePeriod time.Duration
	// DependsOn is the depends_on list as written; Dependencies adds the
	// services that Refs name.
	DependsOn []string
	// Refs are the references to other services (service.NAME.ATTR) in
	// env, sensitive_env, command, entrypoint and labels, in source order.
	// Those attributes are left unset here and evaluated by Resolve once
	// the referenced services are placed.
	Refs []ServiceRef

	User       string
	WorkingDir string
	Hostname   string
	ExtraHosts []string // "host:ip"

	Ports     []Port
	Placement Placement
	Resources Resources
	Health    *Health // nil: no health block
	Update    Update
	Volumes   []Volume

	DeclRange hcl.Range // the service block's header
	// AttrRanges holds the source range of each attribute or block set in the
	// service, keyed by its path ("image", "replicas", "placement.constraint",
	// "port[0].published", ...), so that later errors can point at a line.
	AttrRanges map[string]hcl.Range

	// deferred holds what Resolve needs to evaluate the attributes that
	// refer to other services; nil when there are none.
	deferred *deferred
}

// Range returns the source range for an attribute path of the service,
// falling back to the block header.
func (s *Service) Range(path string) hcl.Range {
	if r, ok := s.AttrRanges[path]; ok {
		return r
	}
	return s.DeclRange
}

// EnvVar is one environment variable's value.
type EnvVar struct {
	Value string
	// Sensitive is set when the value derives from a sensitive variable or was
	// declared in sensitive_env. It must never be printed.
	Sensitive bool
}

// Build describes an image built on the local engine.
type Build struct {
	Context    string // resolved relative to the configuration directory
	Dockerfile string // relative to Context; default "Dockerfile"
	Args       map[string]string
	Target     string
}

// Port publishes a container port on the node. It is the one port mapping
// type from configuration to executor: the planner resolves Published (and
// sets Assigned) and carries it in plans as planner.PortSpec, the same type,
// whose JSON field names are the plan format's. Its node side is Host().
type Port struct {
	Target    int    `json:"target"`
	Published int    `json:"published"`         // 0: assigned by berth from AutoPortMin..AutoPortMax
	Protocol  string `json:"protocol"`          // "tcp" | "udp"
	HostIP    string `json:"host_ip,omitempty"` // "" means all addresses
	// Assigned is true when berth chose Published from the auto range; the
	// configuration never sets it.
	Assigned bool `json:"assigned,omitempty"`
	// Mode is "host" (bind Published on the replica's node; "" means host)
	// or "ingress" (the project's proxy serves Published on every ingress
	// node and balances over the replicas).
	Mode string `json:"mode,omitempty"`
	// HostName and Path (a prefix) route an ingress port's requests.
	HostName string `json:"host,omitempty"`
	Path     string `json:"path,omitempty"`
	// Backend is, for an ingress port of one replica's container, the host
	// port (on HostIP, the node's private address) the proxy sends
	// requests to; the planner assigns it. 0 in the configuration.
	Backend   int       `json:"backend,omitempty"`
	DeclRange hcl.Range `json:"-"`
}

// Placement decides which nodes may run a service's replicas.
type Placement struct {
	// Constraint is a bool expression over `node`; nil means every node.
	Constraint hcl.Expression
	// Spread is an expression over `node` whose value groups nodes; replicas
	// are spread evenly over the groups. nil means: spread over nodes.
	Spread hcl.Expression
	// MaxPerNode limits replicas per node; 0 means no limit.
	MaxPerNode int
}

// Resources reserved and limited per replica.
type Resources struct {
	NanoCPUs    int64 // cpus * 1e9; 0: unset
	MemoryBytes int64 // 0: unset
}

// Health says how apply decides that a replica has started well.
type Health struct {
	HTTP        string   // path probed with GET on the first port's target
	TCP         bool     // connect to the first port's target
	Cmd         []string // Docker healthcheck command (CMD form)
	Port        int      // container port to probe; default the first port's target
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// Update is a service's rollout policy.
type Update struct {
	Parallelism   int
	Order         string // "start-first" | "stop-first"
	FailureAction string // "rollback" | "pause"
	Monitor       time.Duration
	Delay         time.Duration
	// Reschedule places the replicas that may run on an unreachable node
	// on reachable nodes (as -reschedule-unreachable does for every
	// service); a replica with a named volume never moves.
	Reschedule bool
}

// Volume mounts a named volume (data, kept by berth) or a host path.
type Volume struct {
	Source   string // a volume name, or an absolute host path for a bind mount
	Target   string
	ReadOnly bool
}

// IsBind reports whether the volume is a host path rather than a named volume.
func (v Volume) IsBind() bool { return len(v.Source) > 0 && v.Source[0] == '/' }

// Millis is n milliseconds as a duration (for the planner, which does not
// import the clock's package).
func Millis(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
