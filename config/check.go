package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// checkServices runs the checks that look across services and nodes.
func (l *loader) checkServices() {
	byName := map[string]*Service{}
	for _, s := range l.cfg.Services {
		byName[s.Name] = s
	}
	names := make([]string, 0, len(byName))
	for _, s := range l.cfg.Services {
		names = append(names, s.Name)
	}
	for _, s := range l.cfg.Services {
		x := l.svcExtra[s]
		for i, dep := range s.DependsOn {
			if _, ok := byName[dep]; ok {
				continue
			}
			rng := s.Range("depends_on")
			if i < len(x.dependsRanges) {
				rng = x.dependsRanges[i]
			}
			l.errorf(rng, "Reference to undeclared service", "The service %q depends on %q, which is not declared.%s", s.Name, dep, didYouMean(dep, names))
		}
		l.checkFit(s)
		l.checkPlacementOnNodes(s)
		l.checkServiceRefs(s, byName)
	}
	l.checkDependencyCycles(byName)
	l.checkIngressRoutes()
}

// checkIngressRoutes reports two ingress ports on one published port whose
// host and path are the same (the proxy could not tell them apart), and a
// host mode port on a published port the ingress proxy serves.
func (l *loader) checkIngressRoutes() {
	type at struct {
		s *Service
		i int
	}
	var ingress []at
	for _, s := range l.cfg.Services {
		for i, p := range s.Ports {
			if p.Ingress() && p.Published != 0 {
				ingress = append(ingress, at{s, i})
			}
		}
	}
	rng := func(a at, attr string) hcl.Range { return a.s.Range(fmt.Sprintf("port[%d].%s", a.i, attr)) }
	for k, a := range ingress {
		p := a.s.Ports[a.i]
		for _, b := range ingress[:k] {
			q := b.s.Ports[b.i]
			if p.Published != q.Published || p.HostName != q.HostName || p.Path != q.Path {
				continue
			}
			route := fmt.Sprintf("port %d", p.Published)
			if p.HostName != "" {
				route += " host " + p.HostName
			}
			if p.Path != "" {
				route += " path " + p.Path
			}
			l.duplicatef(rng(a, "published"), rng(b, "published"), "Duplicate ingress route",
				"The ingress ports of %s and %s both take %s: give them a distinct host or path.", portOwner(a.s, a.i), portOwner(b.s, b.i), route)
			break
		}
	}
	for _, s := range l.cfg.Services {
		for i, p := range s.Ports {
			if p.Ingress() || p.Published == 0 || p.Protocol != "tcp" {
				continue
			}
			for _, b := range ingress {
				if b.s.Ports[b.i].Published == p.Published {
					l.errorf(s.Range(fmt.Sprintf("port[%d].published", i)), "Port taken by the ingress",
						"The service %q publishes host port %d, which the ingress proxy serves on every ingress node for %s at %s.",
						s.Name, p.Published, portOwner(b.s, b.i), rangeString(rng(b, "published")))
					break
				}
			}
		}
	}
}

func portOwner(s *Service, i int) string { return fmt.Sprintf("service %q (port[%d])", s.Name, i) }

// dependsRange is the range of s's dependency on dep.
func (l *loader) dependsRange(s *Service, dep string) hcl.Range {
	x := l.svcExtra[s]
	for i, d := range s.DependsOn {
		if d == dep && i < len(x.dependsRanges) {
			return x.dependsRanges[i]
		}
	}
	return s.Range("depends_on")
}

// checkDependencyCycles reports every depends_on cycle once, with its path.
func (l *loader) checkDependencyCycles(byName map[string]*Service) {
	names := make([]string, len(l.cfg.Services))
	for i, s := range l.cfg.Services {
		names[i] = s.Name
	}
	deps := func(name string) []string {
		var out []string
		for _, d := range byName[name].DependsOn {
			if _, ok := byName[d]; ok {
				out = append(out, d)
			}
		}
		// A reference implies depends_on.
		for _, r := range byName[name].Refs {
			out = append(out, r.Service)
		}
		return out
	}
	walkDeps(names, deps, func(cycle []string) {
		first := byName[cycle[0]]
		rng, ref := l.depRange(first, cycle[1])
		if len(cycle) == 2 && ref != "" {
			l.errorf(rng, "Reference to the service itself",
				"The service %q refers to itself (%s). A reference counts as depends_on, and a service cannot start after itself.", first.Name, ref)
			return
		}
		l.errorf(rng, "Dependency cycle",
			"The services depend on each other in a cycle: %s. berth starts a service after the ones it depends on, so a cycle can never start.%s", strings.Join(cycle, " -> "), l.cycleText(cycle, byName))
	}, nil)
}

// walkDeps visits names depth first, in order, each after its dependencies
// (deps lists them): post, when set, gets each name once its dependencies
// were visited. Every cycle is passed to cycle once, as its path with the
// first name repeated at the end; a repeated dependency counts once.
func walkDeps(names []string, deps func(string) []string, cycle func([]string), post func(string)) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = visiting
		stack = append(stack, name)
		seen := map[string]bool{}
		for _, dep := range deps(name) {
			if seen[dep] {
				continue
			}
			seen[dep] = true
			switch state[dep] {
			case unvisited:
				visit(dep)
			case visiting:
				i := slices.Index(stack, dep)
				cycle(append(slices.Clone(stack[i:]), dep))
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		if post != nil {
			post(name)
		}
	}
	for _, name := range names {
		if state[name] == unvisited {
			visit(name)
		}
	}
}

// checkFit reports replicas that cannot fit on the declared nodes, counting
// every node (constraints also depend on facts gathered later).
func (l *loader) checkFit(s *Service) {
	n := len(l.cfg.Nodes)
	if s.Replicas == 0 {
		return
	}
	if n == 0 {
		rng := s.DeclRange
		if r, ok := s.AttrRanges["replicas"]; ok {
			rng = r
		}
		l.errorf(rng, "No node to run the service", "The service %q has %d replica(s), but the configuration declares no node.", s.Name, s.Replicas)
		return
	}
	if m := s.Placement.MaxPerNode; m > 0 && m*n < s.Replicas {
		l.errorf(s.Range("placement.max_per_node"), "Replicas cannot fit",
			"The service %q asks for %d replicas, but with max_per_node = %d at most %d fit on the %d declared node(s).", s.Name, s.Replicas, m, m*n, n)
		return
	}
	first := slices.IndexFunc(s.Ports, func(p Port) bool { return !p.Ingress() })
	if first >= 0 && n < s.Replicas {
		// Every host mode port block publishes a host port (berth assigns
		// one when published is left out, the same for every replica), and
		// one host port can be bound by one container per node. Ingress
		// ports set no such bound: each replica has its own backend port.
		p := s.Ports[first]
		path, what := fmt.Sprintf("port[%d]", first), fmt.Sprintf("a host port for container port %d", p.Target)
		if p.Published != 0 {
			path, what = path+".published", fmt.Sprintf("host port %d", p.Published)
		}
		l.errorf(s.Range(path), "Replicas cannot fit",
			"The service %q publishes %s, which only one replica per node can bind, but asks for %d replicas on %d declared node(s). Add nodes or lower replicas.", s.Name, what, s.Replicas, n)
	}
}

// staticNodeValue is `node` as far as the configuration knows it: name,
// address and labels, with the facts gathered live unknown.
func staticNodeValue(n *Node) cty.Value {
	m := NodeValue(NodeInfo{Name: n.Name, Address: n.Address, Labels: n.Labels}).AsValueMap()
	u := UnknownNodeValue().AsValueMap()
	for _, k := range []string{"cpus", "memory", "arch", "os"} {
		m[k] = u[k]
	}
	return cty.ObjectVal(m)
}

// checkPlacementOnNodes evaluates the constraint on every declared node, as
// far as the configuration knows them (name, address and labels; the live
// facts unknown). Like the planner, it counts a node where the constraint
// fails to evaluate (a label missing) as not eligible; if no node is, no
// replica can ever be placed.
func (l *loader) checkPlacementOnNodes(s *Service) {
	c := s.Placement.Constraint
	if l.svcExtra[s].badPlacement || c == nil || len(l.cfg.Nodes) == 0 || s.Replicas == 0 {
		return
	}
	why := ""
	for _, n := range l.cfg.Nodes {
		v, diags := c.Value(PlacementContext(staticNodeValue(n)))
		switch {
		case diags.HasErrors():
			if why == "" {
				why = fmt.Sprintf(" On node %q it cannot be evaluated: %s", n.Name, diagsText(diags))
			}
		case !v.IsKnown():
			return // depends on live facts
		case !v.IsNull() && v.Type() == cty.Bool && v.True():
			return
		}
	}
	l.errorf(c.Range(), "No node satisfies the placement constraint",
		"The constraint is false on every declared node, given their names, addresses and labels, so no replica of %q can be placed.%s", s.Name, why)
}

// diagsText folds error diagnostics into a sentence.
func diagsText(diags hcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			parts = append(parts, strings.TrimSuffix(d.Detail, "."))
		}
	}
	return strings.Join(parts, "; ") + "."
}
