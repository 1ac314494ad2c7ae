package config

import (
	"fmt"
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
	}
	l.checkDependencyCycles(byName)
}

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
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(s *Service)
	visit = func(s *Service) {
		state[s.Name] = visiting
		stack = append(stack, s.Name)
		seen := map[string]bool{}
		for _, dep := range s.DependsOn {
			d, ok := byName[dep]
			if !ok || seen[dep] {
				continue
			}
			seen[dep] = true
			switch state[dep] {
			case unvisited:
				visit(d)
			case visiting:
				i := len(stack) - 1
				for i >= 0 && stack[i] != dep {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), dep)
				first := byName[cycle[0]]
				l.errorf(l.dependsRange(first, cycle[1]), "Dependency cycle",
					"The services depend on each other in a cycle: %s. berth starts a service after the ones it depends on, so a cycle can never start.", strings.Join(cycle, " -> "))
			}
		}
		stack = stack[:len(stack)-1]
		state[s.Name] = done
	}
	for _, s := range l.cfg.Services {
		if state[s.Name] == unvisited {
			visit(s)
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
	for i, p := range s.Ports {
		if p.Published == 0 || n >= s.Replicas {
			continue
		}
		l.errorf(s.Range(fmt.Sprintf("port[%d].published", i)), "Replicas cannot fit",
			"The service %q publishes host port %d, which one replica per node can bind, but asks for %d replicas on %d declared node(s). Leave published out, add nodes or lower replicas.", s.Name, p.Published, s.Replicas, n)
		return
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

// checkPlacementOnNodes evaluates the placement expressions on every declared
// node, with the live facts unknown: an error there (a label missing on some
// node) would stop the plan, and a constraint no node can meet places nothing.
func (l *loader) checkPlacementOnNodes(s *Service) {
	c, sp := s.Placement.Constraint, s.Placement.Spread
	if l.svcExtra[s].badPlacement || (c == nil && sp == nil) || len(l.cfg.Nodes) == 0 {
		return
	}
	eligible := 0
	constraintFailed, spreadFailed := false, false
	for _, n := range l.cfg.Nodes {
		ctx := PlacementContext(staticNodeValue(n))
		if c != nil {
			v, diags := c.Value(ctx)
			if diags.HasErrors() {
				if !constraintFailed {
					l.diags = append(l.diags, onNode(diags, n.Name)...)
				}
				constraintFailed = true
				continue
			}
			if v.IsKnown() && !v.IsNull() && v.Type() == cty.Bool && v.False() {
				continue
			}
		}
		eligible++
		if sp != nil && !spreadFailed {
			if _, diags := sp.Value(ctx); diags.HasErrors() {
				l.diags = append(l.diags, onNode(diags, n.Name)...)
				spreadFailed = true
			}
		}
	}
	if c != nil && !constraintFailed && eligible == 0 && s.Replicas > 0 {
		l.errorf(c.Range(), "No node satisfies the placement constraint",
			"The constraint is false on every declared node, given their names, addresses and labels, so no replica of %q can be placed.", s.Name)
	}
}

// onNode says on which node a placement expression failed.
func onNode(diags hcl.Diagnostics, node string) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		c := *d
		if c.Severity == hcl.DiagError {
			c.Detail = fmt.Sprintf("On node %q: %s", node, d.Detail)
			if d.Summary == "Missing map element" || d.Summary == "Invalid index" {
				c.Detail += " Where a label may be missing, use lookup(node.labels, \"NAME\", \"DEFAULT\")."
			}
		}
		out = append(out, &c)
	}
	return out
}
