package planner

import (
	"fmt"
	"github.com/berth-dev/berth/config"
	"maps"
	"slices"
)

// Labels of berth's own volumes (lock, audit, commit markers).
const (
	LabelHolder = "berth.holder" // user@host
	LabelPID    = "berth.pid"
	LabelSince  = "berth.since" // RFC 3339
	LabelResult = "berth.result"

	KindLock   = "lock"
	KindAudit  = "audit"
	KindCommit = "commit"
	// KindLockPlan names the plan a held lock applies: a volume of its
	// own (Docker cannot relabel the lock volume), labelled with the
	// lock's apply ID and the plan ID.
	KindLockPlan = "lock-plan"
)

// Recovery modes.
const (
	RecoverRollback = "rollback"
	RecoverForward  = "forward"
)

// recover finds containers left by an interrupted apply (renamed aside, or
// created by it), plans their recovery, and returns the live state as it
// will be once recovery has run, indexed.
func (p *planState) recover(live *Live) (*Live, *Observed) {
	obs := Observe(p.project, live)
	configured := make(map[string]bool, len(p.cfg.Nodes))
	for _, n := range p.cfg.Nodes {
		configured[n.Name] = true
	}
	applies := map[string]bool{}
	interrupted := func(r Replica) {
		if id := r.Container.Labels[LabelApply]; configured[r.Node] && slices.Contains(p.opts.Interrupted, id) {
			applies[id] = true
		}
	}
	for _, r := range obs.Aside() {
		if configured[r.Node] {
			applies[r.AsideApply] = true
		}
		interrupted(r)
	}
	for _, svc := range obs.Services() {
		for _, r := range obs.Replicas(svc) {
			interrupted(r)
		}
	}
	if len(applies) == 0 {
		return live, obs
	}
	ids := slices.Sorted(maps.Keys(applies))
	mode := p.opts.Recover
	if mode == "" {
		mode = RecoverRollback
	}
	for _, id := range ids {
		if obs.Committing(id) {
			// The apply had succeeded and was removing old containers:
			// finishing it is the only way that loses nothing.
			mode = RecoverForward
		}
	}
	p.plan.Interrupted = &Interrupted{ApplyID: ids[0], Holder: lockHolder(obs, ids[0]), Mode: mode}

	out := cloneLive(live)
	for _, n := range p.cfg.Nodes {
		st := out.Node(n.Name)
		if st == nil || !st.Reachable {
			continue
		}
		var discards, restores []Action
		for _, c := range st.Containers {
			orig, id, aside := ParseAsideName(c.Name)
			switch {
			case aside && applies[id] && mode == RecoverRollback:
				restores = append(restores, p.recoveryAction(Restore, c, n.Name, orig,
					fmt.Sprintf("interrupted apply %s: restore the container it replaced or deleted", id)))
			case aside && applies[id]:
				discards = append(discards, p.recoveryAction(Discard, c, n.Name, c.Name,
					fmt.Sprintf("interrupted apply %s is finished: remove the old container it replaced", id)))
			case !aside && applies[c.Labels[LabelApply]] && mode == RecoverRollback:
				discards = append(discards, p.recoveryAction(Discard, c, n.Name, c.Name,
					fmt.Sprintf("interrupted apply %s is rolled back: remove the container it created", c.Labels[LabelApply])))
			}
		}
		p.plan.Recovery = append(p.plan.Recovery, discards...)
		p.plan.Recovery = append(p.plan.Recovery, restores...)
		for _, a := range discards {
			removeContainer(st, a.Old.ID)
		}
		for _, a := range restores {
			restoreContainer(st, a)
		}
	}
	return out, Observe(p.project, out)
}

// lockHolder is who holds (or held) the lock of the apply, "" if no lock of
// it is left.
func lockHolder(obs *Observed, applyID string) string {
	for _, node := range obs.Nodes() {
		if l, ok := obs.Locks()[node]; ok && l.ApplyID == applyID && l.Holder != "" {
			return l.Holder
		}
	}
	return ""
}

func (p *planState) recoveryAction(kind ActionKind, c Container, node, name, reason string) Action {
	r := 0
	fmt.Sscanf(c.Labels[LabelReplica], "%d", &r)
	a := Action{Kind: kind, Service: c.Labels[LabelService], Replica: r, Node: node, Container: name,
		Old: ref(&c, node), Reason: reason, Ports: bindingPorts(c.Ports)}
	if kind == Restore && len(c.Ports) == 0 {
		// Stopped aside, it publishes nothing now: once restored, it
		// publishes what its spec label records (see restoreContainer).
		if f, ok := parseSpecLabel(c.Labels); ok {
			for _, ps := range f.Ports {
				// An ingress port's backend is per container, not recorded.
				if pt, ok := config.ParsePort(ps); ok && !pt.Ingress() {
					a.Ports = append(a.Ports, pt)
				}
			}
		}
	}
	return a
}

func removeContainer(st *NodeState, id string) {
	st.Containers = slices.DeleteFunc(st.Containers, func(c Container) bool { return c.ID == id })
}

// cloneLive deep-copies the parts of a live state that planning and
// simulation modify.
func cloneLive(l *Live) *Live {
	out := &Live{Nodes: make(map[string]*NodeState, len(l.Nodes))}
	for k, st := range l.Nodes {
		c := *st
		c.Containers = make([]Container, len(st.Containers))
		for i, ct := range st.Containers {
			ct.Labels = maps.Clone(ct.Labels)
			ct.Ports = slices.Clone(ct.Ports)
			ct.Mounts = slices.Clone(ct.Mounts)
			ct.Networks = slices.Clone(ct.Networks)
			c.Containers[i] = ct
		}
		c.Foreign = slices.Clone(st.Foreign)
		c.Images = slices.Clone(st.Images)
		c.HostPorts = slices.Clone(st.HostPorts)
		c.Volumes = slices.Clone(st.Volumes)
		c.Networks = slices.Clone(st.Networks)
		out.Nodes[k] = &c
	}
	return out
}

// restoreContainer marks a renamed-aside container as back under its name
// and running, publishing the ports its spec label records.
func restoreContainer(st *NodeState, a Action) {
	for i := range st.Containers {
		c := &st.Containers[i]
		if c.ID != a.Old.ID {
			continue
		}
		c.Name = a.Container
		c.State = "running"
		if f, ok := parseSpecLabel(c.Labels); ok && len(c.Ports) == 0 {
			for _, ps := range f.Ports {
				if pt, ok := config.ParsePort(ps); ok && !pt.Ingress() {
					c.Ports = append(c.Ports, Binding(pt))
					st.HostPorts = append(st.HostPorts, pt.Host())
				}
			}
		}
	}
}
