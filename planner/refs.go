package planner

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
)

// This file is references between services: once a service is placed, its
// values (service.NAME.address, .endpoints, .url) are known, and the
// services that refer to it, planned after it (depends_on order), are
// resolved with them. A dependant whose resolved value changed is replaced,
// and its changes name the move that caused them.

// endpoint is where other services reach a replica of a service placed on
// node n: the node's private address and the host port of the service's
// first port. The one place that decides it (ingress ports refine it).
func endpoint(n *config.Node, ports []PortSpec) string {
	if len(ports) == 0 || n == nil {
		return ""
	}
	host := n.PrivateAddress
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 address
	}
	return host + ":" + strconv.Itoa(ports[0].Published)
}

// reachedOn is the node whose address reaches a replica placed on n: n
// itself, except for a service whose first port is an ingress port when n
// runs no ingress proxy (ingress { nodes } leaves it out): then the first
// ingress node, whose proxy reaches every replica.
func (p *planState) reachedOn(n *nodeView, ports []PortSpec) *nodeView {
	if len(ports) == 0 || !ports[0].Ingress() || p.ing == nil || len(p.ing.nodes) == 0 || slices.Contains(p.ing.nodes, n) {
		return n
	}
	return p.ing.nodes[0]
}

// serviceInfo is a service's values given its replicas' endpoints by index
// (1..R; "" for a replica with none), its first port and the ingress TLS
// mode.
func serviceInfo(eps []string, first PortSpec, tls string) (config.ServiceInfo, bool) {
	var si config.ServiceInfo
	for _, e := range eps {
		if e != "" {
			si.Endpoints = append(si.Endpoints, e)
		}
	}
	if len(si.Endpoints) == 0 {
		return si, false
	}
	si.Address = si.Endpoints[0]
	si.URL = serviceURL(si.Address, first, tls)
	return si, true
}

// serviceURL is the URL of a service reached at address through its first
// port: "http://" + address for a host mode port; for an ingress port, its
// ingress URL: https when the ingress has TLS, the route's host when it
// has one (else the address's), the published port unless it is the
// scheme's default, and the route's path.
func serviceURL(address string, first PortSpec, tls string) string {
	if !first.Ingress() {
		return "http://" + address
	}
	scheme, def := "http", 80
	if tls != "" && tls != config.DefaultIngressTLS {
		scheme, def = "https", 443
	}
	host := first.HostName
	if host == "" {
		host = address // "HOST:PORT" or "[V6]:PORT", as endpoint writes it
		if i := strings.LastIndex(address, ":"); i >= 0 {
			host = address[:i]
		}
	}
	if first.Published != def {
		host += ":" + strconv.Itoa(first.Published)
	}
	return scheme + "://" + host + first.Path
}

// refTarget is a placed service as its dependants see it: its values now
// and, from the live containers, before this plan.
type refTarget struct {
	name     string
	info     config.ServiceInfo
	ok       bool
	old      config.ServiceInfo
	oldOK    bool
	oldNodes map[int]string // replica -> node before the plan
	newNodes map[int]string // replica -> node after it
	oldPorts map[int]int    // replica -> host port of the first port before
	newPort  int
	// partial is set when some replicas are left to unreachable nodes;
	// unplaced lists them.
	partial  bool
	unplaced []int
}

// recordTarget records a placed service's values for the services that
// refer to it.
func (p *planState) recordTarget(svc *config.Service, d *serviceDesired, placed []*nodeView) {
	if len(d.ports) == 0 {
		return
	}
	t := &refTarget{name: svc.Name, oldNodes: map[int]string{}, newNodes: map[int]string{}, oldPorts: map[int]int{},
		newPort: d.ports[0].Published}
	eps := make([]string, len(placed))
	for i := 1; i < len(placed); i++ {
		if placed[i] == nil {
			t.partial = true
			t.unplaced = append(t.unplaced, i)
			continue
		}
		t.newNodes[i] = placed[i].name()
		eps[i] = endpoint(p.reachedOn(placed[i], d.ports).cfg, d.ports)
	}
	tls := p.cfg.IngressOf().TLS
	t.info, t.ok = serviceInfo(eps, d.ports[0], tls)

	first := d.ports[0]
	byIndex := map[int][]ownContainer{}
	for _, oc := range p.own[svc.Name] {
		if oc.replica > 0 {
			byIndex[oc.replica] = append(byIndex[oc.replica], oc)
		}
	}
	indexes := slices.Sorted(maps.Keys(byIndex))
	oldEps := make([]string, 0, len(indexes))
	for _, i := range indexes {
		oc := preferRunning(byIndex[i])[0]
		t.oldNodes[i] = oc.node.name()
		for _, b := range oc.c.Ports {
			if b.ContainerPort == first.Target && b.Protocol == first.Protocol {
				t.oldPorts[i] = b.HostPort
				pt := first
				pt.Published = b.HostPort
				if first.Ingress() {
					// Reached through the ingress proxy on its node: the
					// published port, not the replica's backend (which a
					// replace changes).
					t.oldPorts[i], pt.Published = first.Published, first.Published
				}
				oldEps = append(oldEps, endpoint(p.reachedOn(oc.node, d.ports).cfg, []PortSpec{pt}))
				break
			}
		}
	}
	t.old, t.oldOK = serviceInfo(oldEps, first, tls)
	if p.targets == nil {
		p.targets = map[string]*refTarget{}
	}
	p.targets[svc.Name] = t
}

// resolveRefs evaluates the service's references to services placed
// before it.
func (p *planState) resolveRefs(svc *config.Service) (*config.Service, []refCause, hcl.Diagnostics) {
	if len(svc.Refs) == 0 {
		return svc, nil, nil
	}
	values := map[string]config.ServiceInfo{}
	var causes []refCause
	warned := map[string]bool{}
	for _, r := range svc.Refs {
		t := p.targets[r.Service]
		if t == nil || !t.ok {
			continue
		}
		values[r.Service] = t.info
		if t.partial && !warned[r.Service] {
			warned[r.Service] = true
			p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
				"service %q refers to %q, some of whose replicas are left to unreachable nodes: service.%s.* counts only the replicas on reachable nodes",
				svc.Name, r.Service, r.Service))
		}
		if c := t.cause(r.Attr); c != "" {
			causes = append(causes, refCause{field: r.Field, key: r.Key, text: r.String() + ": " + c})
		}
	}
	rs, diags := svc.Resolve(values)
	return rs, causes, diags
}

// value is the target's value of attr, now or before the plan.
func value(si config.ServiceInfo, attr string) string {
	switch attr {
	case "address":
		return si.Address
	case "url":
		return si.URL
	}
	return strings.Join(si.Endpoints, ",")
}

// cause says why the target's value of attr changes, or "" when it does
// not (or there was none before).
func (t *refTarget) cause(attr string) string {
	if !t.ok {
		return ""
	}
	// The old values come from the reachable nodes only: a replica left to
	// an unreachable node is the cause when it would decide the value.
	var away []string
	for _, i := range t.unplaced {
		if attr == "endpoints" || len(t.newNodes) == 0 || i < slices.Min(slices.Collect(maps.Keys(t.newNodes))) {
			away = append(away, fmt.Sprintf("%s.%d", t.name, i))
		}
	}
	if len(away) > 0 {
		return strings.Join(away, ", ") + " may run on an unreachable node and is left out"
	}
	if !t.oldOK || value(t.old, attr) == value(t.info, attr) {
		return ""
	}
	var idx []int
	if attr == "endpoints" {
		idx = slices.Sorted(maps.Keys(t.oldNodes))
		for i := range t.newNodes {
			if _, ok := t.oldNodes[i]; !ok {
				idx = append(idx, i)
			}
		}
		slices.Sort(idx)
	} else {
		// The lowest replica decides, before and after.
		lowest := func(m map[int]string) int { return slices.Min(slices.Collect(maps.Keys(m))) }
		idx = []int{lowest(t.oldNodes)}
		if len(t.newNodes) > 0 {
			if n := lowest(t.newNodes); n != idx[0] {
				idx = append(idx, n)
			}
		}
	}
	var parts []string
	for _, i := range idx {
		o, had := t.oldNodes[i]
		n, has := t.newNodes[i]
		switch {
		case had && has && o != n:
			parts = append(parts, fmt.Sprintf("%s.%d moves %s -> %s", t.name, i, o, n))
		case !had && has:
			parts = append(parts, fmt.Sprintf("%s.%d is created on %s", t.name, i, n))
		case had && !has:
			parts = append(parts, fmt.Sprintf("%s.%d is removed from %s", t.name, i, o))
		}
		if op, ok := t.oldPorts[i]; ok && has && op != t.newPort {
			parts = append(parts, fmt.Sprintf("%s.%d's host port %d -> %d", t.name, i, op, t.newPort))
		}
	}
	if len(parts) == 0 {
		return "changed"
	}
	return strings.Join(parts, ", ")
}

// refCause is why a resolved reference changed, for the fields it sits in.
type refCause struct {
	field string // "env", "sensitive_env", "command", "entrypoint", "labels"
	key   string // the env variable or label, "" for any
	text  string // "service.db.address: db.1 moves node1 -> node3"
}

// matches reports whether the cause explains a change of the plan field
// ("env.DB", "labels.x", "command").
func (c refCause) matches(field string) bool {
	attr, key, _ := strings.Cut(field, ".")
	switch {
	case attr == "env" && (c.field == "env" || c.field == "sensitive_env"):
	case attr == c.field:
	default:
		return false
	}
	return c.key == "" || c.key == key
}

// explain sets the cause of every change that a changed reference
// explains, and returns the index of the first such change (-1: none).
func explain(changes []FieldChange, causes []refCause) int {
	first := -1
	for i := range changes {
		for _, c := range causes {
			if c.matches(changes[i].Field) {
				changes[i].Cause = c.text
				if first < 0 {
					first = i
				}
				break
			}
		}
	}
	return first
}

// refReason is the reason of a replace caused by a changed reference:
// `env.DB: "a" -> "b" (service.db.address: db.1 moves node1 -> node3)`.
func refReason(changes []FieldChange, i int) string {
	c := changes[i]
	s := fmt.Sprintf("%s: %s -> %s (%s)", c.Field, c.Old, c.New, c.Cause)
	if len(changes) > 1 {
		s += fmt.Sprintf("; %d more changed", len(changes)-1)
	}
	return s
}

// references lists the service's references as the plan shows them.
func references(svc *config.Service) []string {
	var out []string
	for _, r := range svc.Refs {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}
