package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/internal/env"
	"github.com/berth-dev/berth/executor/internal/msg"
)

// Target is one SSH hop, fully resolved: where to connect, as whom, with
// which keys, how to verify the host, and through which bastion.
type Target struct {
	// label names the hop in errors: a node name or "jump host X".
	label string
	alias string // the name it was resolved from (node address or jump spec)
	host  string // after ~/.ssh/config HostName
	port  int
	user  string
	// identities are the key files to offer after the agent's keys, in
	// order. Explicit ones (from berth's config) must exist.
	identities []identityFile
	// defaultIdentities is set when identities are OpenSSH's default files.
	defaultIdentities bool
	// knownHosts are the known_hosts files to verify against; the first is
	// the one -trust-new-hosts writes to.
	knownHosts []string
	hostKey    string // pinned "SHA256:..." fingerprint, optional
	// inheritKnownHosts marks a jump host that verifies against the
	// known_hosts of the host it leads to.
	inheritKnownHosts bool
	via               *Target
}

type identityFile struct {
	path     string
	explicit bool
}

func (t *Target) addr() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

// key identifies a connection in the pool: a node used as another node's
// bastion shares its connection.
func (t *Target) key() string {
	k := t.user + "@" + t.addr() + "|" + strings.Join(t.knownHosts, ",") + "|" + t.hostKey
	if t.via != nil {
		k += " via " + t.via.key()
	}
	return k
}

// Resolver applies berth's node settings, the project's SSH defaults and
// ~/.ssh/config, in that order of precedence (berth's configuration is the
// more explicit statement), then OpenSSH's built-in defaults.
type Resolver struct {
	cfg     *config.Config
	home    string
	environ []string
	sshcfg  *ssh_config.Config // nil: no ~/.ssh/config
}

// NewResolver reads the ssh_config file of opts (default ~/.ssh/config) for
// cfg's nodes. A file that cannot be parsed is an error.
func NewResolver(cfg *config.Config, opts Options) (*Resolver, error) {
	r := &Resolver{cfg: cfg, home: opts.HomeDir, environ: opts.Environ}
	if r.environ == nil {
		r.environ = os.Environ()
	}
	if r.home == "" {
		r.home = env.Get(r.environ, "HOME")
	}
	if r.home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("find home directory: %w", err)
		}
		r.home = h
	}
	path := opts.SSHConfigPath
	if path == "" {
		path = filepath.Join(r.home, ".ssh", "config")
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read SSH config: %w", err)
	}
	defer f.Close()
	c, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("read SSH config %s: %s", path, msg.OneLine(err.Error()))
	}
	r.sshcfg = c
	return r, nil
}

// get returns the first value of key for alias in ~/.ssh/config ("" when
// unset or invalid).
func (r *Resolver) get(alias, key string) string {
	if r.sshcfg == nil {
		return ""
	}
	v, err := r.sshcfg.Get(alias, key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(v)
}

func (r *Resolver) getAll(alias, key string) []string {
	if r.sshcfg == nil {
		return nil
	}
	v, err := r.sshcfg.GetAll(alias, key)
	if err != nil {
		return nil
	}
	return v
}

// expand replaces a leading ~ and the tokens %d (home), %u (local user),
// %h (host), %r (remote user), %p (port) and %% as OpenSSH does in paths.
func (r *Resolver) expand(path string, t *Target) string {
	if path == "~" {
		return r.home
	}
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		path = filepath.Join(r.home, rest)
	}
	if !strings.Contains(path, "%") {
		return path
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] != '%' || i+1 == len(path) {
			b.WriteByte(path[i])
			continue
		}
		i++
		switch path[i] {
		case 'd':
			b.WriteString(r.home)
		case 'u':
			b.WriteString(r.localUser())
		case 'h':
			b.WriteString(t.host)
		case 'r':
			b.WriteString(t.user)
		case 'p':
			b.WriteString(strconv.Itoa(t.port))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(path[i])
		}
	}
	return b.String()
}

func (r *Resolver) localUser() string {
	if u := env.Get(r.environ, "USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// maxHops bounds bastion chains (and catches cycles through ~/.ssh/config).
const maxHops = 8

// Node resolves a configured node, with its chain of jump hosts.
func (r *Resolver) Node(n *config.Node) (*Target, error) {
	return r.nodeHop(n, map[string]bool{}, 0)
}

func (r *Resolver) nodeHop(n *config.Node, seen map[string]bool, depth int) (*Target, error) {
	if seen[n.Name] {
		return nil, fmt.Errorf("jump: node %s is its own bastion (a cycle of jump settings)", n.Name)
	}
	seen[n.Name] = true
	defer delete(seen, n.Name)
	if n.IsLocal() {
		return nil, fmt.Errorf("jump: node %s is the local engine, not an SSH host", n.Name)
	}
	ps := r.cfg.Project.SSH
	t, err := r.host(n.Address, first(n.User, ps.User), firstInt(n.Port, ps.Port), depth)
	if err != nil {
		return nil, err
	}
	t.label = n.Name
	if f := first(n.IdentityFile, ps.IdentityFile); f != "" {
		t.addExplicitIdentity(r.expand(f, t))
	}
	if kh := first(n.KnownHosts, ps.KnownHosts); kh != "" {
		t.knownHosts = []string{r.expand(kh, t)}
		// Jump hosts from ~/.ssh/config's ProxyJump verify against the
		// node's known_hosts too.
		for v := t.via; v != nil && v.inheritKnownHosts; v = v.via {
			v.knownHosts = t.knownHosts
		}
	}
	t.hostKey = n.HostKey

	if n.Jump != "" {
		t.via = nil
		if depth >= maxHops {
			return nil, fmt.Errorf("jump: more than %d hops", maxHops)
		}
		if j := r.cfg.Node(n.Jump); j != nil {
			via, err := r.nodeHop(j, seen, depth+1)
			if err != nil {
				return nil, fmt.Errorf("jump host %s: %w", j.Name, err)
			}
			t.via = via
		} else {
			via, err := r.jumpList(n.Jump, t, depth+1)
			if err != nil {
				return nil, err
			}
			t.via = via
		}
	}
	return t, nil
}

// addExplicitIdentity puts berth's identity file first; it must exist. The
// ones from ~/.ssh/config follow, while OpenSSH's default files are dropped
// (as with `ssh -i`).
func (t *Target) addExplicitIdentity(path string) {
	ids := []identityFile{{path: path, explicit: true}}
	if !t.defaultIdentities {
		ids = append(ids, t.identities...)
	}
	t.identities = ids
	t.defaultIdentities = false
}

// host resolves an SSH host alias with ~/.ssh/config: HostName, User, Port,
// IdentityFile, UserKnownHostsFile and ProxyJump. user and port given here
// win over the file's.
func (r *Resolver) host(alias, userName string, port, depth int) (*Target, error) {
	if depth > maxHops {
		return nil, fmt.Errorf("jump: more than %d hops (a cycle in ProxyJump?)", maxHops)
	}
	t := &Target{label: alias, alias: alias, host: alias}
	if hn := r.get(alias, "HostName"); hn != "" {
		t.host = strings.ReplaceAll(hn, "%h", alias)
	}
	t.user = first(userName, r.get(alias, "User"))
	if t.user == "" {
		t.user = r.localUser()
	}
	if port == 0 {
		if p, err := strconv.Atoi(r.get(alias, "Port")); err == nil && p > 0 {
			port = p
		}
	}
	if port == 0 {
		port = config.DefaultSSHPort
	}
	t.port = port
	for _, f := range r.getAll(alias, "IdentityFile") {
		t.identities = append(t.identities, identityFile{path: r.expand(f, t)})
	}
	if len(t.identities) == 0 {
		t.defaultIdentities = true
		for _, f := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			t.identities = append(t.identities, identityFile{path: filepath.Join(r.home, ".ssh", f)})
		}
	}
	if kh := r.get(alias, "UserKnownHostsFile"); kh != "" && kh != "none" {
		for _, f := range strings.Fields(kh) {
			t.knownHosts = append(t.knownHosts, r.expand(f, t))
		}
	}
	if len(t.knownHosts) == 0 {
		t.knownHosts = []string{filepath.Join(r.home, ".ssh", "known_hosts")}
	}
	if pj := r.get(alias, "ProxyJump"); pj != "" && pj != "none" {
		via, err := r.jumpList(pj, t, depth+1)
		if err != nil {
			return nil, err
		}
		t.via = via
	}
	return t, nil
}

// jumpList resolves a ProxyJump-style list "[user@]host[:port],..." : the
// first entry is dialled first. Hops inherit the project's SSH defaults and
// the known_hosts files of the host they lead to.
func (r *Resolver) jumpList(list string, to *Target, depth int) (*Target, error) {
	var via *Target
	for _, spec := range strings.Split(list, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		if n := r.cfg.Node(spec); n != nil && via == nil {
			t, err := r.nodeHop(n, map[string]bool{}, depth)
			if err != nil {
				return nil, fmt.Errorf("jump host %s: %w", n.Name, err)
			}
			via = t
			continue
		}
		u, hostport, ok := strings.Cut(spec, "@")
		if !ok {
			u, hostport = "", spec
		}
		h, p := hostport, 0
		if hh, pp, err := net.SplitHostPort(hostport); err == nil {
			n, err := strconv.Atoi(pp)
			if err != nil || n <= 0 || n > 65535 {
				return nil, fmt.Errorf("jump host %q: bad port %q", spec, pp)
			}
			h, p = hh, n
		}
		if h == "" {
			return nil, fmt.Errorf("jump host %q: no host", spec)
		}
		ps := r.cfg.Project.SSH
		t, err := r.host(h, first(u, ps.User), firstInt(p, ps.Port), depth)
		if err != nil {
			return nil, err
		}
		t.label = spec
		if ps.IdentityFile != "" {
			t.addExplicitIdentity(r.expand(ps.IdentityFile, t))
		}
		if r.get(h, "UserKnownHostsFile") == "" {
			t.knownHosts = to.knownHosts
			t.inheritKnownHosts = true
		}
		if via != nil {
			// A chain: this hop is reached through the previous one
			// (replacing a ProxyJump of its own, as OpenSSH does).
			t.via = via
		}
		via = t
	}
	if via == nil {
		return nil, fmt.Errorf("jump %q: no host", list)
	}
	return via, nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstInt(vs ...int) int {
	for _, v := range vs {
		if v != 0 {
			return v
		}
	}
	return 0
}
