package planner

import (
	"fmt"
	"strconv"
)

// diffReplica compares a kept container with its desired spec on the same
// node. ok is false when nothing needs to change.
// spec is the service's template (resources, restart, ports); name is the
// replica's container name. The caller fills in the action's own spec.
func (p *planState) diffReplica(d *serviceDesired, oc *ownContainer, spec *ContainerSpec, name string, n *nodeView) (Action, bool) {
	c := oc.c
	a := Action{Service: d.svc.Name, Replica: oc.replica, Node: n.name(), Container: name,
		Old: ref(c, n.name())}
	replace := func(reason string, drift bool) (Action, bool) {
		a.Kind = Replace
		a.Reason = reason
		a.Drift = drift
		a.Order = d.svc.Update.Order
		if a.Order == "" {
			a.Order = StartFirst
		}
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
		a.Changes = diffFields(old, d.fields)
		reason := "configuration changed"
		if len(a.Changes) > 0 {
			reason = a.Changes[0].Field + " changed"
			if len(a.Changes) > 1 {
				reason = fmt.Sprintf("%s and %d more changed", a.Changes[0].Field, len(a.Changes)-1)
			}
		}
		return replace(reason, false)
	}
	if id, ok := n.imageIDs[NormalizeRef(d.image)]; ok && c.ImageID != "" && id != c.ImageID {
		a.Changes = []FieldChange{{Field: "image_id", Old: shortID(c.ImageID), New: shortID(id)}}
		return replace(fmt.Sprintf("image %s on %s now has a different ID", d.image, n.name()), false)
	}
	// In place: what Docker can change on a running container.
	if c.NanoCPUs != spec.NanoCPUs {
		a.Changes = append(a.Changes, FieldChange{Field: "resources.cpus", Old: cpuOrNone(c.NanoCPUs), New: cpuOrNone(spec.NanoCPUs)})
	}
	if c.MemoryBytes != spec.MemoryBytes {
		a.Changes = append(a.Changes, FieldChange{Field: "resources.memory", Old: memOrNone(c.MemoryBytes), New: memOrNone(spec.MemoryBytes)})
	}
	if c.Restart != spec.Restart {
		a.Changes = append(a.Changes, FieldChange{Field: "restart", Old: strconv.Quote(c.Restart), New: strconv.Quote(spec.Restart)})
	}
	if len(a.Changes) > 0 {
		a.Kind = Update
		a.Reason = "updated in place: " + a.Changes[0].Field
		if len(a.Changes) > 1 {
			a.Reason = fmt.Sprintf("updated in place: %s and %d more", a.Changes[0].Field, len(a.Changes)-1)
		}
		return a, true
	}
	return a, false
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

func shortID(id string) string {
	if len(id) > 19 && id[:7] == "sha256:" {
		return id[:19]
	}
	return id
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
