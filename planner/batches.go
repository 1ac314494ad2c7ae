package planner

import (
	"github.com/berth-dev/berth/config"
)

// This file is the batch assignment. Batches run one after another and a
// batch's actions run together, so a batch is a level: a service's first
// batch comes right after the last batch of every service it must follow,
// and its later batches (creates after scale-down deletes, then changes in
// groups of its update.parallelism) take the levels after that. Services
// that need not follow each other share batches and roll out at the same
// time. A service follows
//   - the services it depends on (depends_on and references:
//     config.Service.Dependencies), and
//   - a service planned before it whose container on some node held a host
//     port that this service's new containers publish there (the port is
//     free only once that container is gone), and
//   - every removed service's deletes (a renamed service may take over its
//     volumes and ports), and the ingress proxies' batch.
// Deletes of a destroy, and of removed services, go in reverse: a service's
// deletes come after those of the services that depend on it.

// levels is the batch assignment in progress.
type levels struct {
	// batches by level (index 0 is batch 1), each in planning order.
	batches [][]Action
	// end is the last level a service's batches took (its start - 1 when
	// it had none), by service name.
	end map[string]int
	// base is the last level of the removed services' deletes: configured
	// services start after it.
	base int
	// holders are the project's services holding each node's host ports
	// before the plan, by node.
	holders map[string][]PortHold
}

// at adds b as the batch at level (1-based); empty batches are skipped.
func (l *levels) at(level int, b []Action) {
	if len(b) == 0 {
		return
	}
	for len(l.batches) < level {
		l.batches = append(l.batches, nil)
	}
	l.batches[level-1] = append(l.batches[level-1], b...)
}

// addFirst adds b as a batch before every service's (the ingress proxies'
// batch): everything added later comes after it.
func (p *planState) addFirst(b []Action) {
	if len(b) > 0 {
		p.lv.base++
		p.lv.at(p.lv.base, b)
	}
}

// initLevels records who holds the host ports before the plan.
func (p *planState) initLevels() {
	p.lv = &levels{end: map[string]int{}, holders: map[string][]PortHold{}}
	for _, n := range p.nodes {
		if !n.reachable {
			continue
		}
		for _, h := range p.obs.Holds(n.name()) {
			if h.Service != "" {
				p.lv.holders[n.name()] = append(p.lv.holders[n.name()], h)
			}
		}
	}
}

// serviceStart is the first level of svc's batches: after the removed
// services, its dependencies and the services whose ports its new
// containers take over (news are its creates and replaces).
func (p *planState) serviceStart(svc *config.Service, news [][]Action) int {
	after := p.lv.base
	for _, d := range svc.Dependencies() {
		after = max(after, p.lv.end[d])
	}
	for _, b := range news {
		for _, a := range b {
			if a.Spec == nil {
				continue
			}
			for _, pt := range a.Spec.Ports {
				for _, h := range p.lv.holders[a.Node] {
					if h.Service != svc.Name && h.Overlaps(pt.Host()) {
						after = max(after, p.lv.end[h.Service])
					}
				}
			}
		}
	}
	return after + 1
}

// addServiceBatches adds a service's batches from its start level on, in
// order, and records its last level.
func (p *planState) addServiceBatches(svc *config.Service, batches ...[]Action) {
	level := p.serviceStart(svc, batches)
	for _, b := range batches {
		if len(b) > 0 {
			p.lv.at(level, b)
			level++
		}
	}
	p.lv.end[svc.Name] = level - 1
}

// addDeletesReversed adds the deletes of services (given in dependency
// order, dependencies first) so that a service's come after those of the
// services in the list that depend on it; deps gives each one's
// dependencies. The levels start after from; it returns the last level
// used.
func (p *planState) addDeletesReversed(from int, order []string, deps map[string][]string, deletes map[string][]Action) int {
	level := map[string]int{}
	last := from
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		// The dependents of n come later in order, so they are placed.
		after := from
		for _, m := range order[i+1:] {
			for _, d := range deps[m] {
				if d == n {
					after = max(after, level[m])
				}
			}
		}
		level[n] = after
		if len(deletes[n]) > 0 {
			level[n] = after + 1
			p.lv.at(level[n], deletes[n])
			last = max(last, level[n])
		}
	}
	return last
}
