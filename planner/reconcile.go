package planner

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
)

// This file is reconcile: once placement has chosen a node for every
// replica of a service, each replica is kept, updated in place, replaced,
// created or deleted, in that service's batches.

// planService places the service's replicas and reconciles each with what
// runs.
func (p *planState) planService(svc *config.Service) hcl.Diagnostics {
	image := svc.Image
	if svc.Build != nil {
		if b := p.opts.BuildImages[svc.Name]; b != "" {
			image = b
		}
	}
	rs, causes, diags := p.resolveRefs(svc)
	if diags.HasErrors() {
		return diags
	}
	if rb := p.opts.Rollback; rb != nil && rb.Services[svc.Name] != nil {
		rv := rb.Services[svc.Name]
		if rs, diags = rollbackService(p.project, rs, rv, rb.ApplyID); diags.HasErrors() {
			return diags
		}
		image = rv.Image
	}
	d := resolveService(p.project, rs, image, p.resolvedPorts[svc.Name])
	d.causes = causes
	p.desired[svc.Name] = d
	if p.plan.Revisions == nil {
		p.plan.Revisions = map[string]*Revision{}
	}
	p.plan.Revisions[svc.Name] = revisionOf(d)
	p.release(svc.Name)

	pl := p.newPlacement(svc, d)
	if diags := pl.place(); diags != nil {
		return diags
	}
	rc := &reconcile{pl: pl, p: p, svc: svc, d: d, used: map[*Container]bool{}, recorded: p.recordedReplicas(svc.Name)}
	for i := 1; i <= svc.Replicas; i++ {
		rc.replica(i)
	}
	rc.extras()
	rc.addBatches()
	p.recordTarget(svc, d, pl.placed)
	p.plan.Services = append(p.plan.Services, servicePlan(svc, d, pl.placed))
	return nil
}

// reconcile is one service's reconcile in progress: the actions so far, by
// batch kind, and the containers they account for.
type reconcile struct {
	pl  *placement
	p   *planState
	svc *config.Service
	d   *serviceDesired
	// used holds the containers kept, replaced or moved: the others are
	// deleted.
	used map[*Container]bool
	// recorded is the highest replica count recorded on the service's
	// containers: a missing replica below it was removed outside berth.
	recorded                  int
	deletes, creates, changes []Action
	// replicas is the service's replica count as its label records it.
	replicas string
}

// recordedReplicas is the highest replica count recorded on the service's
// containers.
func (p *planState) recordedReplicas(service string) int {
	most := 0
	for _, oc := range p.own[service] {
		if n, err := strconv.Atoi(oc.c.Labels[LabelReplicas]); err == nil && n > most {
			most = n
		}
	}
	return most
}

// replica decides what happens to replica i: kept in place (perhaps
// updated or replaced there), moved from another node, or created.
func (rc *reconcile) replica(i int) {
	n := rc.pl.placed[i]
	switch {
	case n == nil:
		// may run on an unreachable node
	case rc.pl.kept[i] != nil:
		rc.keep(i, n, rc.pl.kept[i])
	case len(rc.pl.byIndex[i]) > 0:
		rc.move(i, n, preferRunning(rc.pl.byIndex[i])[0])
	default:
		rc.create(i, n)
	}
}

// spec is replica i's spec on node n, with the replica count recorded and
// its ingress backends: those of keep (a container kept in place), or new
// ones. Its upstreams go into the final route table.
func (rc *reconcile) spec(i int, n *nodeView, keep *Container) *ContainerSpec {
	spec := rc.d.replicaSpec(rc.p.project, n.name(), i)
	if rc.replicas == "" {
		rc.replicas = strconv.Itoa(rc.svc.Replicas)
	}
	spec.Labels[LabelReplicas] = rc.replicas
	if rv := rc.p.rollbackRevision(rc.svc.Name); rv != nil {
		spec.Labels[LabelRollbackTo] = rc.p.opts.Rollback.ApplyID
	}
	rc.p.withBackends(spec, n, keep)
	rc.p.newUpstreams(spec)
	return spec
}

// keep compares the replica's container on its node with the desired spec.
func (rc *reconcile) keep(i int, n *nodeView, oc *ownContainer) {
	rc.used[oc.c] = true
	// Compare against the template first; a replica that needs nothing
	// (the common case) costs no spec of its own.
	a, ok := rc.p.diffReplica(rc.d, oc, &rc.d.template, containerNameAs(oc.c.Name, rc.p.project, rc.svc.Name, i), n)
	if !ok {
		rc.p.plan.unchanged(rc.svc.Name)
		rc.p.keptUpstreams(rc.d, oc.c, n)
		return
	}
	var keep *Container
	if a.Kind == Update {
		keep = oc.c
	}
	a.Spec = rc.spec(i, n, keep)
	rc.changes = append(rc.changes, a)
}

// move replaces the replica's container on another node with a new one on
// n.
func (rc *reconcile) move(i int, n *nodeView, oc ownContainer) {
	rc.used[oc.c] = true
	spec := rc.spec(i, n, nil)
	from := oc.node.name()
	why := rc.pl.ruled[from]
	switch {
	case oc.node.removed:
		why = removedWhy
	case why == "":
		why = "not eligible"
	}
	a := Action{Kind: Replace, Service: rc.svc.Name, Replica: i, Node: n.name(), Container: spec.Name,
		Old: ref(oc.c, from), Spec: spec, Order: orderOf(rc.svc),
		Reason: fmt.Sprintf("moved from %s to %s: %s", from, n.name(), why)}
	if vols := namedVolumes(oc.c); len(vols) > 0 {
		w := fmt.Sprintf("service %q replica %d moves from %s to %s: the data in volume %s stays behind on %s",
			rc.svc.Name, i, from, n.name(), strings.Join(vols, ", "), from)
		a.Reason += "; " + w[strings.Index(w, "the data"):]
		rc.p.plan.Warnings = append(rc.p.plan.Warnings, w)
	}
	if ps := rc.p.spec(oc.c.Labels); ps.ok && ps.hash == oc.c.Labels[LabelHash] {
		a.Changes = diffFields(ps.fields, rc.d.fields)
		explain(a.Changes, rc.d.causes)
	}
	a.Changes = append(a.Changes, inPlaceChanges(oc.c, spec)...)
	rc.changes = append(rc.changes, a)
}

// orderOf is the service's update order, start-first unless set.
func orderOf(svc *config.Service) string {
	if svc.Update.Order == "" {
		return StartFirst
	}
	return svc.Update.Order
}

// create starts replica i on n: it has no container anywhere.
func (rc *reconcile) create(i int, n *nodeView) {
	spec := rc.spec(i, n, nil)
	a := Action{Kind: Create, Service: rc.svc.Name, Replica: i, Node: n.name(), Container: spec.Name, Spec: spec,
		Reason: "no existing container"}
	if i <= rc.recorded {
		a.Drift = true
		a.Reason = "drift: the container is missing (removed outside berth, or on a node no longer configured)"
	}
	if note := rc.pl.dataNote[i]; note != "" {
		a.Reason += "; " + note
	}
	if note := rc.pl.elsewhere[i]; note != "" {
		a.Reason += "; " + note
	}
	if hosts := rc.pl.rescheduled[i]; hosts != "" {
		spec.Labels[LabelRescheduled] = hosts
		a.Drift = false
		a.Reason = "rescheduled: it may run on " + hosts + ", which is unreachable (" + rc.pl.rescheduleBy + ")"
	}
	rc.creates = append(rc.creates, a)
}

// extras deletes the service's containers no replica accounts for: a
// replica label edited outside berth, a scale down, a duplicate.
func (rc *reconcile) extras() {
	R := rc.svc.Replicas
	for _, oc := range rc.p.own[rc.svc.Name] {
		if rc.used[oc.c] {
			continue
		}
		var a Action
		switch {
		case oc.replica == 0:
			a = rc.p.deleteAction(oc, "drift: the replica label was changed outside berth")
			a.Drift = true
		case oc.replica > R:
			a = rc.p.deleteAction(oc, fmt.Sprintf("scale down to %d replicas", R))
		case rc.pl.kept[oc.replica] != nil && rc.pl.kept[oc.replica].c.Labels[LabelRescheduled] != "":
			kept := rc.pl.kept[oc.replica]
			a = rc.p.deleteAction(oc, fmt.Sprintf("duplicate of replica %d, which was rescheduled to %s while %s was unreachable",
				oc.replica, kept.node.name(), kept.c.Labels[LabelRescheduled]))
		default:
			a = rc.p.deleteAction(oc, fmt.Sprintf("duplicate of replica %d (kept on %s)", oc.replica, rc.pl.placed[oc.replica].name()))
			a.Drift = true
		}
		rc.deletes = append(rc.deletes, a)
	}
}

// addBatches adds the service's deletes, then its creates, then its
// changes in batches of the update parallelism (from the service's first
// batch on: see batches.go).
func (rc *reconcile) addBatches() {
	batches := [][]Action{rc.deletes, rc.creates}
	changes := rc.changes
	par := rc.svc.Update.Parallelism
	if par <= 0 {
		par = len(changes)
	}
	for len(changes) > 0 {
		k := min(par, len(changes))
		batches = append(batches, changes[:k:k])
		changes = changes[k:]
	}
	rc.p.addServiceBatches(rc.svc, batches...)
}

func (pl *Plan) unchanged(service string) {
	if pl.Unchanged == nil {
		pl.Unchanged = map[string]int{}
	}
	pl.Unchanged[service]++
}

func namedVolumes(c *Container) []string {
	var out []string
	for _, m := range c.Mounts {
		if m.Type == "volume" && m.Name != "" && len(m.Name) < 64 {
			out = append(out, m.Name)
		}
	}
	return out
}

// diffReplica compares a kept container with its desired spec on the same
// node. ok is false when nothing needs to change.
// spec is the service's template (resources, restart, ports); name is the
// replica's container name. The caller fills in the action's own spec.
func (p *planState) diffReplica(d *serviceDesired, oc *ownContainer, spec *ContainerSpec, name string, n *nodeView) (Action, bool) {
	c := oc.c
	a := Action{Service: d.svc.Name, Replica: oc.replica, Node: n.name(), Container: name,
		Old: ref(c, n.name())}
	inPlace := inPlaceChanges(c, spec)
	netChanges, repair, netReason := networkDrift(c, spec.Network, Aliases(d.svc.Name, oc.replica))
	replace := func(reason string, drift bool) (Action, bool) {
		a.Kind = Replace
		a.Reason = reason
		a.Drift = drift
		// A replace applies every field of the new spec: the in-place
		// ones that differ are listed too, after those that force it.
		a.Changes = append(a.Changes, inPlace...)
		a.Changes = append(a.Changes, netChanges...)
		a.Order = orderOf(d.svc)
		if !c.Running() {
			a.Order, a.OrderReason = StopFirst, "the old container is not running"
		} else if port := samePort(c, spec); port != "" {
			if a.Order != StopFirst {
				a.OrderReason = fmt.Sprintf("port %s on %s is held by the old container, so it must stop first", port, n.name())
			}
			a.Order = StopFirst
		}
		return a, true
	}
	ps := p.spec(c.Labels)
	old := ps.fields
	if !ps.ok || ps.hash != c.Labels[LabelHash] {
		return replace("drift: berth's labels on the container were changed outside berth", true)
	}
	if c.Name != name {
		return replace(fmt.Sprintf("drift: the container was renamed to %q outside berth", c.Name), true)
	}
	if c.Labels[LabelHash] != d.hash {
		// Whatever else is wrong with the container, the replace also
		// changes these fields.
		a.Changes = diffFields(old, d.fields)
	}
	switch c.State {
	case "running":
	case "exited":
		return replace(fmt.Sprintf("drift: the container exited (code %d) outside berth", c.ExitCode), true)
	case "created":
		return replace("drift: the container exists but was never started", true)
	case "restarting":
		return replace(fmt.Sprintf("drift: the container keeps restarting (%d restarts)", c.RestartCount), true)
	default:
		return replace(fmt.Sprintf("drift: the container is %s", c.State), true)
	}
	if c.Labels[LabelHash] != d.hash {
		reason := "configuration changed"
		if i := explain(a.Changes, d.causes); i >= 0 {
			reason = refReason(a.Changes, i)
		} else if len(a.Changes) > 0 {
			reason = a.Changes[0].Field + " changed"
			if len(a.Changes) > 1 {
				reason = fmt.Sprintf("%s and %d more changed", a.Changes[0].Field, len(a.Changes)-1)
			}
		}
		if to := c.Labels[LabelRollbackTo]; to != "" && p.opts.Rollback == nil {
			// berth rollback put this revision here: the configuration
			// was left as it was, and now differs. The user decides.
			p.rolledBack(d.svc.Name, to)
			return replace("drift: it runs the revision of apply "+to+" (berth rollback), the configuration differs: "+reason, true)
		}
		return replace(reason, false)
	}
	if id, ok := n.imageIDs[NormalizeRef(d.image)]; ok && c.ImageID != "" && id != c.ImageID {
		a.Changes = []FieldChange{{Field: "image_id", Old: ShortID(c.ImageID), New: ShortID(id)}}
		return replace(fmt.Sprintf("image %s on %s now has a different ID", d.image, n.name()), false)
	}
	// In place: what Docker can change on a running container.
	a.Changes = inPlace
	if len(a.Changes) > 0 {
		a.Kind = Update
		a.Reason = "updated in place: " + a.Changes[0].Field
		if len(a.Changes) > 1 {
			a.Reason = fmt.Sprintf("updated in place: %s and %d more", a.Changes[0].Field, len(a.Changes)-1)
		}
	}
	// The networks are repaired in place too: leave and join.
	if repair != nil {
		if a.Kind == Update {
			a.Reason = netReason + "; " + a.Reason
		} else {
			a.Kind, a.Reason = Update, netReason
		}
		a.Drift = true
		a.Network = repair
		a.Changes = append(a.Changes, netChanges...)
	}
	return a, a.Kind == Update
}

// inPlaceChanges lists the fields Docker can change on a running container
// whose values on c (as the engine reports them) differ from spec's.
func inPlaceChanges(c *Container, spec *ContainerSpec) []FieldChange {
	var out []FieldChange
	if c.NanoCPUs != spec.NanoCPUs {
		out = append(out, FieldChange{Field: "resources.cpus", Old: cpuOrNone(c.NanoCPUs), New: cpuOrNone(spec.NanoCPUs)})
	}
	if c.MemoryBytes != spec.MemoryBytes {
		out = append(out, FieldChange{Field: "resources.memory", Old: memOrNone(c.MemoryBytes), New: memOrNone(spec.MemoryBytes)})
	}
	if c.Restart != spec.Restart {
		out = append(out, FieldChange{Field: "restart", Old: strconv.Quote(c.Restart), New: strconv.Quote(spec.Restart)})
	}
	return out
}

// samePort returns the first host port the new spec publishes that the old
// container holds, or "".
func samePort(c *Container, spec *ContainerSpec) string {
	for _, pt := range spec.Ports {
		for _, b := range c.Ports {
			if b.Host().Overlaps(pt.Host()) {
				return pt.Host().String()
			}
		}
	}
	return ""
}

func cpuOrNone(n int64) string {
	if n == 0 {
		return "(none)"
	}
	return cpuString(n)
}

func memOrNone(n int64) string {
	if n == 0 {
		return "(none)"
	}
	return memString(n)
}

func (p *planState) deleteAction(oc ownContainer, reason string) Action {
	return Action{
		Kind: Delete, Service: oc.c.Labels[LabelService], Replica: oc.replica,
		Node: oc.node.name(), Container: oc.c.Name, Old: ref(oc.c, oc.node.name()), Reason: reason,
		Ports: bindingPorts(oc.c.Ports),
	}
}

// bindingPorts gives a container's published ports as the plan shows them.
func bindingPorts(bs []PortBinding) []PortSpec {
	out := make([]PortSpec, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Port())
	}
	return out
}
