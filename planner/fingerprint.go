package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// snapshots records what the plan saw of each configured node. The items
// cover what the plan depends on: this project's containers, other
// containers and host processes holding ports the plan publishes (or the
// auto range), the CPU and memory other berth projects reserve, the
// services' named volumes, and the images the services use. Health transitions and
// berth's own lock are left out so that a plan does not go stale for them.
func (p *planState) snapshots(live *Live) []NodeSnapshot {
	p.plan.Nodes = make([]NodeSnapshot, 0, len(p.cfg.Nodes))
	for _, n := range p.cfg.Nodes {
		p.plan.Nodes = append(p.plan.Nodes, NodeSnapshot{Name: n.Name})
	}
	for _, n := range p.removed {
		p.plan.Nodes = append(p.plan.Nodes, NodeSnapshot{Name: n.name(), Removed: true})
	}
	return p.plan.Refingerprint(live)
}

func fingerprintItems(st *NodeState, project string, relevant func(HostPort) bool, images, volumes map[string]bool) []string {
	var items []string
	// What other berth projects reserve, per project: placement subtracts
	// it from the node's capacity.
	type res struct {
		cpus, mem int64
		n         int
	}
	reserved := map[string]*res{}
	for i := range st.Foreign {
		c := &st.Foreign[i]
		proj := c.Labels[LabelProject]
		if proj == "" || proj == project || !c.Running() || (c.NanoCPUs == 0 && c.MemoryBytes == 0) {
			continue
		}
		r := reserved[proj]
		if r == nil {
			r = &res{}
			reserved[proj] = r
		}
		r.cpus += c.NanoCPUs
		r.mem += c.MemoryBytes
		r.n++
	}
	for proj, r := range reserved {
		items = append(items, fmt.Sprintf("berth project %q reserves %s and %s of memory (%d running %s)",
			proj, cpuString(r.cpus), memString(r.mem), r.n, map[bool]string{true: "container", false: "containers"}[r.n == 1]))
	}
	own := map[string]bool{}
	for _, c := range st.Containers {
		own[c.ID] = true
		// Concatenations, not fmt: these run for every replica.
		items = append(items, "container "+c.Name+" "+ShortID(c.ID)+" "+c.State+" hash="+c.Labels[LabelHash])
		if c.Networks != nil {
			items = append(items, networksItem(c))
		}
	}
	// The project network: whether it exists decides its creation, and
	// containers outside the project attached to it keep it from being
	// removed.
	for _, nw := range st.Networks {
		items = append(items, "network "+nw.Name+" "+ShortID(nw.ID)+" project="+strconv.Quote(nw.Labels[LabelProject]))
		for _, id := range nw.Containers {
			if !own[id] {
				items = append(items, fmt.Sprintf("network %s: container %s attached", nw.Name, ShortID(id)))
			}
		}
	}
	for _, c := range st.Foreign {
		var ps []string
		for _, b := range c.Ports {
			if relevant(b.Host()) {
				ps = append(ps, b.Host().String())
			}
		}
		if len(ps) > 0 {
			slices.Sort(ps)
			items = append(items, fmt.Sprintf("foreign container %s %s ports %s", c.Name, ShortID(c.ID), strings.Join(ps, ",")))
		}
	}
	seen := map[portKey]bool{}
	for _, hp := range st.HostPorts {
		k := keyOf(hp)
		if relevant(hp) && !seen[k] {
			seen[k] = true
			items = append(items, "port "+hp.Key()+" in use")
		}
	}
	// The services' named volumes: placement keeps a replica without a
	// container on the node that holds its volume.
	for _, v := range st.Volumes {
		if !volumes[v.Name] {
			continue
		}
		proj, labelled := v.Labels[LabelProject]
		switch {
		case !labelled:
			items = append(items, fmt.Sprintf("volume %s (no berth labels)", v.Name))
		case proj == project && v.Labels[LabelKind] == "":
			items = append(items, fmt.Sprintf("volume %s of service %q replica %q", v.Name, v.Labels[LabelService], v.Labels[LabelReplica]))
		}
	}
	for _, img := range st.Images {
		for _, t := range img.Tags {
			if images[NormalizeRef(t)] {
				items = append(items, "image "+NormalizeRef(t)+" "+ShortID(img.ID))
			}
		}
	}
	// The routes the project's proxy serves: a saved plan's route pushes
	// were computed against them.
	if in := st.Ingress; in != nil {
		if !in.Loaded {
			items = append(items, "ingress proxy without berth's routes")
		}
		for _, r := range in.Routes {
			items = append(items, fmt.Sprintf("ingress route %s -> %s", r, strings.Join(r.Upstreams, ",")))
		}
	}
	slices.Sort(items)
	return items
}

// networksItem is "container NAME ID networks NET(ALIAS,...) ...".
func networksItem(c Container) string {
	var b strings.Builder
	n := len("container  networks") + len(c.Name) + 12
	for _, a := range c.Networks {
		n += len(a.Name) + 3
		for _, al := range a.Aliases {
			n += len(al) + 1
		}
	}
	b.Grow(n)
	b.WriteString("container ")
	b.WriteString(c.Name)
	b.WriteByte(' ')
	b.WriteString(ShortID(c.ID))
	b.WriteString(" networks ")
	for i, a := range c.Networks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Name)
		b.WriteByte('(')
		for j, al := range a.Aliases {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(al)
		}
		b.WriteByte(')')
	}
	return b.String()
}

func fingerprint(s NodeSnapshot) string {
	h := sha256.New()
	if !s.Reachable {
		h.Write([]byte("unreachable\n"))
	}
	// One buffer for every item: h.Write([]byte(item)) would copy each.
	var buf []byte
	for _, it := range s.Items {
		buf = append(append(buf[:0], it...), '\n')
		h.Write(buf)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:8])
}

// StaleError says how the live state differs from what a saved plan saw.
type StaleError struct {
	Nodes []NodeChange
}

// NodeChange is one node whose state changed since the plan was made.
type NodeChange struct {
	Node    string
	Added   []string // items present now, not in the plan
	Removed []string // items in the plan, gone now
	Reach   string   // reachability change, if any
}

func (e *StaleError) Error() string {
	var b strings.Builder
	b.WriteString("stale plan: the cluster changed since the plan was made; run berth plan again")
	for _, n := range e.Nodes {
		fmt.Fprintf(&b, "\n  node %s:", n.Node)
		if n.Reach != "" {
			fmt.Fprintf(&b, " %s", n.Reach)
		}
		for _, it := range n.Removed {
			fmt.Fprintf(&b, "\n    - %s", it)
		}
		for _, it := range n.Added {
			fmt.Fprintf(&b, "\n    + %s", it)
		}
	}
	return b.String()
}

// CheckFresh compares a saved plan's snapshots with the live state now and
// returns a *StaleError naming each node that changed, or nil.
func CheckFresh(saved *Plan, live *Live) error {
	nowNodes := saved.Refingerprint(live)
	cur := map[string]NodeSnapshot{}
	for _, s := range nowNodes {
		cur[s.Name] = s
	}
	var changes []NodeChange
	for _, s := range saved.Nodes {
		c := cur[s.Name]
		if c.Fingerprint == s.Fingerprint {
			continue
		}
		nc := NodeChange{Node: s.Name}
		if c.Reachable != s.Reachable {
			if c.Reachable {
				nc.Reach = "was unreachable, is reachable now"
			} else {
				nc.Reach = "is unreachable now: " + c.Error
			}
		}
		old := setOf(s.Items)
		now := setOf(c.Items)
		for _, it := range c.Items {
			if !old[it] {
				nc.Added = append(nc.Added, it)
			}
		}
		for _, it := range s.Items {
			if !now[it] {
				nc.Removed = append(nc.Removed, it)
			}
		}
		changes = append(changes, nc)
	}
	if len(changes) == 0 {
		return nil
	}
	return &StaleError{Nodes: changes}
}
