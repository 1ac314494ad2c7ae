package config

import (
	"cmp"
	"net"
	"strconv"
	"strings"
)

// HostPort is one port on a node: a protocol, a host IP and a port number.
// It is the value a published port, a container's port binding, a socket a
// host process listens on and a placement's port hold all come down to, so
// the key, the clash rule and the text of a host port are written once, here.
// It is not a port mapping (no container port): that is Port.
type HostPort struct {
	Protocol string `json:"protocol"` // tcp | udp
	IP       string `json:"ip,omitempty"`
	Port     int    `json:"port"`
}

// Key identifies the port regardless of the address it binds: "tcp/8080".
// Two host ports with the same key may clash (see Overlaps).
func (h HostPort) Key() string { return h.Protocol + "/" + strconv.Itoa(h.Port) }

// Overlaps reports whether h and o cannot both be bound on one node: same
// protocol and port, and addresses that meet (an unspecified address binds
// every address, so it meets any other).
func (h HostPort) Overlaps(o HostPort) bool {
	return h.Protocol == o.Protocol && h.Port == o.Port &&
		(WildcardIP(h.IP) || WildcardIP(o.IP) || h.IP == o.IP)
}

// Compare orders host ports by protocol, port number, then address.
func (h HostPort) Compare(o HostPort) int {
	if c := strings.Compare(h.Protocol, o.Protocol); c != 0 {
		return c
	}
	if c := cmp.Compare(h.Port, o.Port); c != 0 {
		return c
	}
	return strings.Compare(h.IP, o.IP)
}

// String is the port as plans and errors show it: "8080/tcp". The address is
// left out: it never decides which port a message is about.
func (h HostPort) String() string { return strconv.Itoa(h.Port) + "/" + h.Protocol }

// WildcardIP reports whether ip binds every address of the node: "" or an
// unspecified address (0.0.0.0, ::).
func WildcardIP(ip string) bool {
	if ip == "" {
		return true
	}
	parsed := net.ParseIP(ip)
	return parsed != nil && parsed.IsUnspecified()
}

// Port modes.
const (
	ModeHost    = "host"
	ModeIngress = "ingress"
)

// Ingress reports whether the port is served by the project's ingress proxy.
func (p Port) Ingress() bool { return p.Mode == ModeIngress }

// Host is the node side of the port: what it binds on the node. For an
// ingress port that is the replica's backend port (0 until assigned), not
// the published port the proxy serves.
func (p Port) Host() HostPort {
	if p.Ingress() {
		return HostPort{Protocol: p.Protocol, IP: p.HostIP, Port: p.Backend}
	}
	return HostPort{Protocol: p.Protocol, IP: p.HostIP, Port: p.Published}
}

// String renders the mapping as "[ip:]published:target/proto", the form
// berth's spec label stores and ParsePort reads back. An ingress port is
// "ingress:target/proto": its published port, host and path are routes,
// and its backend port is per replica, so none of them is a container
// field whose change forces a replace.
func (p Port) String() string {
	if p.Ingress() {
		return ModeIngress + ":" + strconv.Itoa(p.Target) + "/" + p.Protocol
	}
	s := strconv.Itoa(p.Published) + ":" + strconv.Itoa(p.Target) + "/" + p.Protocol
	if p.HostIP != "" {
		s = p.HostIP + ":" + s
	}
	return s
}

// ParsePort reads Port.String's form; ok is false when s is not in it.
func ParsePort(s string) (p Port, ok bool) {
	body, proto, ok := strings.Cut(s, "/")
	if !ok {
		return p, false
	}
	p.Protocol = proto
	if t, ok := strings.CutPrefix(body, ModeIngress+":"); ok {
		p.Mode = ModeIngress
		var err error
		p.Target, err = strconv.Atoi(t)
		return p, err == nil
	}
	parts := strings.Split(body, ":")
	if len(parts) == 3 {
		p.HostIP = parts[0]
		parts = parts[1:]
	}
	if len(parts) != 2 {
		return p, false
	}
	var err1, err2 error
	p.Published, err1 = strconv.Atoi(parts[0])
	p.Target, err2 = strconv.Atoi(parts[1])
	return p, err1 == nil && err2 == nil
}
