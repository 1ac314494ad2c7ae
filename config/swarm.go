package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Swarm selects Docker Swarm as the project's engine: berth talks to the
// first manager that answers and lets Swarm place and run the replicas.
// Nil in Project means berth's own placement over SSH (the default).
type Swarm struct {
	// Managers are names of node blocks, tried in this order.
	Managers []string
	// ManagerRanges holds the range of each element of managers, when
	// written as a list.
	ManagerRanges []hcl.Range
	DeclRange     hcl.Range
}

var swarmSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "managers", Required: true}},
}

// decodeSwarm reads the project's swarm block (at most one).
func (l *loader) decodeSwarm(b *hcl.Block, first **hcl.Block) {
	if *first != nil {
		l.duplicatef(b.DefRange, (*first).DefRange, "Duplicate swarm block", "A project has at most one swarm block.")
		return
	}
	*first = b
	sw := &Swarm{DeclRange: b.DefRange}
	l.cfg.Project.Swarm = sw
	c, diags := b.Body.Content(swarmSchema)
	l.diags = append(l.diags, diags...)
	if c == nil {
		return
	}
	a := c.Attributes["managers"]
	v, r, ok := l.stringList(a)
	if !ok {
		return
	}
	if len(v) == 0 {
		l.errorf(r.rng, "No swarm manager", "managers must name at least one node block, the Swarm managers berth may talk to (in order).")
	}
	sw.Managers = v
	if elems, diags := hcl.ExprList(a.Expr); !diags.HasErrors() && len(elems) == len(v) {
		for _, e := range elems {
			sw.ManagerRanges = append(sw.ManagerRanges, e.Range())
		}
	}
}

// swarmUnsupported lists the service attributes (by AttrRanges path) that
// have no Swarm equivalent, with the reason shown to the user. Paths ending
// in "[]" match every index (port[0].host_ip, port[1].host_ip, ...).
var swarmUnsupported = []struct{ path, why string }{
	{"build", "Swarm nodes cannot build images; build and push the image (or load it on every node) and name it in image"},
	{"pull", "every Swarm node resolves the image itself; berth pins it by digest (or by image ID for an image with no registry digest)"},
	{"port[].host_ip", "a Swarm published port listens on every address of the node"},
	{"health.http", "Swarm's health check runs inside the container, not from berth; write cmd = [\"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:PORT/PATH\"] (or curl) if the image has such a tool"},
	{"health.tcp", "Swarm's health check runs inside the container, not from berth; write a cmd that connects to the port (nc -z 127.0.0.1 PORT) if the image has such a tool"},
	{"health.port", "it only applies to berth's own http and tcp probes"},
	{"port[].host", "it is a route of berth's ingress proxy, which does not run on Swarm"},
	{"port[].path", "it is a route of berth's ingress proxy, which does not run on Swarm"},
}

// checkSwarm checks the swarm block against the nodes, and every service
// attribute that Swarm cannot express. It runs once nodes and services are
// decoded.
func (l *loader) checkSwarm() {
	sw := l.cfg.Project.Swarm
	if sw == nil {
		return
	}
	var names []string
	for _, n := range l.cfg.Nodes {
		names = append(names, n.Name)
	}
	seen := map[string]bool{}
	for i, m := range sw.Managers {
		rng := sw.DeclRange
		if i < len(sw.ManagerRanges) {
			rng = sw.ManagerRanges[i]
		}
		switch {
		case seen[m]:
			l.errorf(rng, "Duplicate swarm manager", "%q is listed twice in managers.", m)
		case !slices.Contains(names, m):
			l.errorf(rng, "Reference to undeclared node", "The swarm manager %q is not a node block of this configuration.%s", m, didYouMean(m, names))
		}
		seen[m] = true
	}
	if in := l.cfg.Project.Ingress; in != nil {
		l.errorf(in.DeclRange, "Not supported with swarm", "The project's ingress block has no Swarm equivalent: berth's ingress proxy does not run on Swarm.")
	}
	for _, s := range l.cfg.Services {
		for _, u := range swarmUnsupported {
			for _, path := range sortedKeys(s.AttrRanges) {
				if swarmPathMatch(u.path, path) {
					l.errorf(s.AttrRanges[path], "Not supported with swarm", "%s (service %q) has no Swarm equivalent: %s.", path, s.Name, u.why)
				}
			}
		}
		for i, p := range s.Ports {
			if p.Ingress() {
				l.errorf(s.Range(fmt.Sprintf("port[%d].mode", i)), "Not supported with swarm",
					"port[%d].mode = %q (service %q) has no Swarm equivalent here: berth's ingress proxy does not run on Swarm, and Swarm's routing mesh needs IPVS, which berth does not assume; use mode = \"host\".", i, p.Mode, s.Name)
				continue
			}
			if p.Published == 0 {
				l.errorf(s.Range(fmt.Sprintf("port[%d]", i)), "Not supported with swarm",
					"port[%d] of service %q has no published port: with swarm, set published (berth keeps no port assignment of its own there).", i, s.Name)
			}
		}
		for _, r := range s.Refs {
			l.errorf(r.Range, "Not supported with swarm",
				"%s (in %s of service %q) has no Swarm equivalent: services reach each other by name on the project's overlay network (%s).", r, r.Field, s.Name, r.Service)
		}
	}
}

// swarmPathMatch reports whether an AttrRanges path matches a pattern of
// swarmUnsupported ("port[]" matches every port index).
func swarmPathMatch(pattern, path string) bool {
	if !strings.Contains(pattern, "[]") {
		return pattern == path
	}
	pre, post, _ := strings.Cut(pattern, "[]")
	rest, ok := strings.CutPrefix(path, pre+"[")
	if !ok {
		return false
	}
	_, rest, ok = strings.Cut(rest, "]")
	return ok && rest == post
}
