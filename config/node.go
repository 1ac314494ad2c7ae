package config

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var nodeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "address", Required: true},
		{Name: "port"},
		{Name: "user"},
		{Name: "identity_file"},
		{Name: "known_hosts"},
		{Name: "host_key"},
		{Name: "jump"},
		{Name: "docker_socket"},
		{Name: "labels"},
		{Name: "private_address"},
		{Name: "drain"},
	},
}

// nodeExtra is what node checks need beyond the Node.
type nodeExtra struct {
	jumpRange hcl.Range
	sshSet    []string // SSH settings written on the node itself
}

// decodeNodes reads every node block, applies the project's SSH defaults and
// checks jumps.
func (l *loader) decodeNodes(blocks hcl.Blocks) {
	byName := map[string]*Node{}
	extra := map[*Node]*nodeExtra{}
	for _, b := range blocks {
		name := b.Labels[0]
		if !ValidName(name) {
			l.errorf(b.LabelRanges[0], "Invalid node name", "%q is not a valid node name. %s", name, nameRule)
		}
		if prev, dup := byName[name]; dup {
			l.duplicatef(b.DefRange, prev.DeclRange, "Duplicate node", "A node named %q was already declared.", name)
			continue
		}
		n := &Node{Name: name, DeclRange: b.DefRange, DockerSocket: DefaultDockerSocket, Labels: map[string]string{}}
		byName[name] = n
		l.cfg.Nodes = append(l.cfg.Nodes, n)
		x := &nodeExtra{}
		extra[n] = x

		content, diags := b.Body.Content(nodeSchema)
		l.diags = append(l.diags, diags...)
		if content == nil {
			continue
		}
		attrs := content.Attributes
		for _, k := range []string{"port", "user", "identity_file", "known_hosts", "host_key", "jump"} {
			if attrs[k] != nil {
				x.sshSet = append(x.sshSet, k)
			}
		}
		l.require(attrs, "address")
		if r, st := l.eval(attrs["address"], cty.String); st == evalOK {
			s := r.val.AsString()
			l.warnSensitive(r, "address")
			switch {
			case s == LocalAddress:
			case s == "":
				l.errorf(r.rng, "Missing node address", "The node %q needs an address: a host name, an IP address, or %q.", name, LocalAddress)
			case strings.Contains(s, "@"):
				l.errorf(r.rng, "Invalid node address", "The address must not include a user; set user = %q instead.", s[:strings.LastIndexByte(s, '@')])
			case strings.Contains(s, "://"):
				l.errorf(r.rng, "Invalid node address", "The address is a host name or IP address (or %q for the local engine), not a URL.", LocalAddress)
			case !validHostname(s):
				if h, p, ok := strings.Cut(s, ":"); ok && validHostname(h) && !strings.Contains(p, ":") {
					l.errorf(r.rng, "Invalid node address", "The address must not include a port; set port = %s instead.", p)
				} else {
					l.errorf(r.rng, "Invalid node address", "%q is neither a host name, an IP address, nor %q (the local engine).", s, LocalAddress)
				}
			}
			n.Address = s
		}
		if p, ok := l.integer(attrs["port"], 1, 65535, "port"); ok {
			n.Port = p
		}
		if s, r, ok := l.str(attrs["user"]); ok {
			if s == "" {
				l.errorf(r.rng, "Invalid user", "user must not be empty; leave it out to use the project's, ~/.ssh/config's or the current user.")
			}
			n.User = s
		}
		if s, _, ok := l.str(attrs["identity_file"]); ok {
			n.IdentityFile = s
		}
		if s, _, ok := l.str(attrs["known_hosts"]); ok {
			n.KnownHosts = s
		}
		if s, r, ok := l.str(attrs["host_key"]); ok {
			if !validFingerprint(s) {
				l.errorf(r.rng, "Invalid host key fingerprint",
					"host_key must be an OpenSSH SHA256 fingerprint such as \"SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\", as printed by ssh-keygen -lf.")
			}
			n.HostKey = s
		}
		if s, r, ok := l.str(attrs["jump"]); ok {
			n.Jump = s
			x.jumpRange = r.rng
		}
		if s, r, ok := l.str(attrs["docker_socket"]); ok {
			if !strings.HasPrefix(s, "/") {
				l.errorf(r.rng, "Invalid docker_socket", "docker_socket must be an absolute path on the node, such as %q.", DefaultDockerSocket)
			}
			n.DockerSocket = s
		}
		if m, _, r, ok := l.stringMap(attrs["labels"]); ok {
			l.warnSensitive(r, "labels")
			for k, v := range m {
				if k == "" {
					l.errorf(r.rng, "Invalid label", "A label name must not be empty.")
					continue
				}
				n.Labels[k] = v
			}
		}
		l.decodePrivateAddress(n, attrs["private_address"])
		if b, ok := l.boolean(attrs["drain"]); ok {
			n.Drain = b
		}
	}
	slices.SortStableFunc(l.cfg.Nodes, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })

	ssh := l.cfg.Project.SSH
	seenAddr := map[string]*Node{}
	for _, n := range l.cfg.Nodes {
		x := extra[n]
		if n.IsLocal() {
			if len(x.sshSet) > 0 {
				l.warnf(n.DeclRange, "SSH settings on a local node", "The node %q uses the local engine (address = %q), so its %s setting is ignored.", n.Name, LocalAddress, strings.Join(x.sshSet, ", "))
			}
		} else {
			if n.User == "" {
				n.User = ssh.User
			}
			if n.Port == 0 {
				n.Port = ssh.Port
			}
			if n.IdentityFile == "" {
				n.IdentityFile = ssh.IdentityFile
			}
			if n.KnownHosts == "" {
				n.KnownHosts = ssh.KnownHosts
			}
		}
		if n.Address != "" {
			key := fmt.Sprintf("%s|%d|%s", n.Address, n.Port, n.DockerSocket)
			if prev, dup := seenAddr[key]; dup {
				l.warnf(n.DeclRange, "Two nodes share an engine", "The nodes %q and %q have the same address, port and docker_socket, so they name the same Docker engine and their containers would clash. %q is at %s.", prev.Name, n.Name, prev.Name, rangeString(prev.DeclRange))
			} else {
				seenAddr[key] = n
			}
		}
		if n.Jump != "" {
			l.checkJump(n, x.jumpRange, byName)
		}
	}
	l.checkJumpCycles(byName, extra)
}

// decodePrivateAddress sets the address other services reach the node's
// replicas at: private_address, else the SSH address, else 127.0.0.1 for
// the local engine.
func (l *loader) decodePrivateAddress(n *Node, a *hcl.Attribute) {
	if s, r, ok := l.str(a); ok {
		switch {
		case s == LocalAddress:
			l.errorf(r.rng, "Invalid private_address", "private_address is a host name or IP address that other nodes reach this node at, such as \"10.0.0.11\"; %q is only for address.", LocalAddress)
		case s == "" || strings.Contains(s, "://") || strings.Contains(s, "@") || !validHostname(s):
			l.errorf(r.rng, "Invalid private_address", "private_address must be a host name or an IP address with no port, such as \"10.0.0.11\", not %s.", l.show(r, fmt.Sprintf("%q", s)))
		}
		n.PrivateAddress = s
		return
	}
	switch {
	case n.Address == LocalAddress:
		n.PrivateAddress = "127.0.0.1"
	default:
		n.PrivateAddress = n.Address
	}
}

// checkJump checks that a jump names a node or a host.
func (l *loader) checkJump(n *Node, rng hcl.Range, byName map[string]*Node) {
	if j, ok := byName[n.Jump]; ok {
		switch {
		case j == n:
			l.errorf(rng, "Invalid jump", "The node %q cannot jump through itself.", n.Name)
		case j.IsLocal():
			l.errorf(rng, "Invalid jump", "The node %q is the local engine (address = %q), which has no SSH server to jump through.", j.Name, LocalAddress)
		}
		return
	}
	if !strings.ContainsAny(n.Jump, ".@:") && n.Jump != "localhost" {
		names := slices.Collect(maps.Keys(byName))
		l.errorf(rng, "Unknown jump node",
			"No node named %q is declared.%s To jump through a host that is not a node, write it as a domain name, an IP address, user@host or host:port.", n.Jump, didYouMean(n.Jump, names))
		return
	}
	if _, _, _, ok := parseJumpHost(n.Jump); !ok {
		l.errorf(rng, "Invalid jump", "jump must name a node or a host as [user@]host[:port], like OpenSSH's ProxyJump; %q is neither.", n.Jump)
	}
}

// checkJumpCycles reports nodes that jump through each other in a loop.
func (l *loader) checkJumpCycles(byName map[string]*Node, extra map[*Node]*nodeExtra) {
	reported := map[string]bool{}
	for _, n := range l.cfg.Nodes {
		path := []string{n.Name}
		seen := map[string]bool{n.Name: true}
		cur := n
		for {
			next, ok := byName[cur.Jump]
			if !ok || next == cur {
				break
			}
			if seen[next.Name] {
				if next == n && !reported[n.Name] {
					for _, p := range path {
						reported[p] = true
					}
					l.errorf(extra[n].jumpRange, "Jump cycle", "The nodes jump through each other in a loop: %s -> %s.", strings.Join(path, " -> "), n.Name)
				}
				break
			}
			seen[next.Name] = true
			path = append(path, next.Name)
			cur = next
		}
	}
}

// validFingerprint reports whether s is "SHA256:" and 32 bytes of base64.
func validFingerprint(s string) bool {
	b64, ok := strings.CutPrefix(s, "SHA256:")
	if !ok {
		return false
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	return err == nil && len(raw) == 32
}
