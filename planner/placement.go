package planner

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// This file is placement: which node runs each replica of one service.
// Eligibility (reachable, constraint), fit (max_per_node, ports, CPU,
// memory), spread over groups, and data locality decide it; reconcile.go
// then turns the placement into actions.

// placement is one service's placement in progress.
type placement struct {
	p         *planState
	svc       *config.Service
	d         *serviceDesired
	base      []*nodeView // reachable nodes whose constraint holds
	baseSet   map[*nodeView]bool
	ruled     map[string]string // node name -> why it cannot take a replica
	kinds     map[string]int    // reason kind -> nodes ruled out by it
	groups    map[string]*group // spread value -> group
	spread    *exprMemo
	nodeGroup map[*nodeView]*group
	// byIndex holds the service's containers by replica index, sorted by
	// node and name.
	byIndex map[int][]ownContainer
	// placed and kept are indexed by replica (1..Replicas): the node each
	// replica goes to (nil: left alone on an unreachable node), and the
	// container kept in place there, if any.
	placed []*nodeView
	kept   []*ownContainer
	// dataNote says, per replica placed by its data, where its volume is.
	dataNote map[int]string
	// dataLeft holds, per replica whose data node could not take it, that
	// node and why.
	dataLeft map[int]dataMiss
	// elsewhere says, per replica created elsewhere because the
	// unreachable nodes cannot hold it, why.
	elsewhere map[int]string
	// rescheduled names, per replica placed on a reachable node although
	// it may run on an unreachable one (-reschedule-unreachable), those
	// unreachable nodes; rescheduleBy says what asked for it.
	rescheduled   map[int]string
	rescheduleBy  string
	rescheduleAre string // "is" or "are", for the unreachable nodes
}

// newPlacement rules out the nodes that cannot take any replica of svc and
// groups the others by their spread value.
func (p *planState) newPlacement(svc *config.Service, d *serviceDesired) *placement {
	pl := &placement{p: p, svc: svc, d: d, groups: map[string]*group{}, nodeGroup: map[*nodeView]*group{},
		baseSet: map[*nodeView]bool{}, byIndex: map[int][]ownContainer{}}
	for _, oc := range p.own[svc.Name] {
		pl.byIndex[oc.replica] = append(pl.byIndex[oc.replica], oc)
	}
	pl.eligibility()
	if e := svc.Placement.Spread; e != nil {
		pl.spread = newExprMemo(e)
	}
	for _, n := range pl.base {
		pl.baseSet[n] = true
		k := pl.spreadKey(n)
		g := pl.groups[k]
		if g == nil {
			g = &group{key: k}
			pl.groups[k] = g
		}
		g.nodes = append(g.nodes, n)
		pl.nodeGroup[n] = g
	}
	return pl
}

// place decides a node for every replica: first a replica that runs on a
// still eligible node stays there, then a replica with no container goes
// to its data, then the rest go where there is most room. It fails when a
// replica fits nowhere.
func (pl *placement) place() hcl.Diagnostics {
	R := pl.svc.Replicas
	pl.placed = make([]*nodeView, R+1)
	pl.kept = make([]*ownContainer, R+1)
	for i := 1; i <= R; i++ {
		pl.keepInPlace(i)
	}
	missing := pl.unplaced()
	missing = pl.placeOnData(missing)
	if failed := pl.unrescheduled(pl.placeNew(missing)); len(failed) > 0 {
		return hcl.Diagnostics{pl.failure(len(failed))}
	}
	pl.warnRescheduled()
	pl.warnDataLeft()
	return nil
}

// keepInPlace keeps replica i on a node that runs it (running containers
// first), if that node is still eligible and has room.
func (pl *placement) keepInPlace(i int) {
	cands := preferRescheduled(preferRunning(pl.byIndex[i]))
	for k := range cands {
		oc := &cands[k]
		if !pl.baseSet[oc.node] {
			continue
		}
		if reason, kind := pl.fit(oc.node); reason != "" {
			pl.rule(oc.node, reason, kind)
			continue
		}
		pl.claim(oc.node, i)
		pl.placed[i], pl.kept[i] = oc.node, oc
		return
	}
}

// unplaced lists the replicas still to place. A replica found on no
// reachable node may run on an unreachable node that could host it, whose
// containers are unknown: it is left alone there rather than created
// elsewhere (a transport error is never read as "no container"; a copy
// elsewhere would run twice once the node is back, with its data split).
// But an unreachable node holds no more replicas of the service than the
// service can place on one node (a published port: one; max_per_node):
// the replicas beyond what the unreachable nodes can hold are certainly
// missing, and are placed elsewhere. The lowest replica indexes are the
// ones left alone.
func (pl *placement) unplaced() []int {
	hidden := pl.p.unreachableHosts(pl.svc)
	bound, why := pl.nodeBound()
	room := -1 // any number
	if bound >= 0 {
		room = bound * len(hidden)
	}
	var missing, unknown, elsewhere []int
	for i := 1; i <= pl.svc.Replicas; i++ {
		switch {
		case pl.placed[i] != nil:
		case len(hidden) > 0 && len(pl.byIndex[i]) == 0 && (room < 0 || len(unknown) < room):
			unknown = append(unknown, i)
		case len(hidden) > 0 && len(pl.byIndex[i]) == 0:
			elsewhere = append(elsewhere, i)
			missing = append(missing, i)
		default:
			missing = append(missing, i)
		}
	}
	are := map[bool]string{true: "is", false: "are"}[len(hidden) == 1]
	if len(unknown) > 0 {
		var moved []int
		moved, unknown = pl.reschedule(unknown, hidden, are)
		missing = append(missing, moved...)
		slices.Sort(missing)
	}
	if len(unknown) > 0 {
		pl.p.plan.Warnings = append(pl.p.plan.Warnings, fmt.Sprintf(
			"service %q %s on no reachable node and may run on %s, which %s unreachable: left alone, not created elsewhere",
			pl.svc.Name, replicaList(unknown), strings.Join(hidden, ", "), are))
	}
	if len(elsewhere) > 0 {
		hold := strconv.Itoa(room)
		if len(hidden) > 1 {
			hold += fmt.Sprintf(" (%d each)", bound)
		}
		hosts := strings.Join(hidden, ", ")
		pl.p.plan.Warnings = append(pl.p.plan.Warnings, fmt.Sprintf(
			"service %q %s on no reachable node and created elsewhere: %s, which %s unreachable, can hold at most %s of its replicas (%s)",
			pl.svc.Name, replicaList(elsewhere), hosts, are, hold, why))
		pl.elsewhere = map[int]string{}
		for _, i := range elsewhere {
			pl.elsewhere[i] = fmt.Sprintf("the unreachable %s can hold at most %s of the service's replicas (%s)", hosts, hold, why)
		}
	}
	return missing
}

// reschedule takes, when asked (-reschedule-unreachable, or the service's
// update { reschedule = true }), the replicas that may run on the
// unreachable nodes hidden and places them on reachable nodes instead,
// unless the service mounts a named volume: its data would stay behind, so
// those replicas are left alone and the plan says why. It returns the
// replicas to place and those still left alone.
func (pl *placement) reschedule(unknown []int, hidden []string, are string) (moved, left []int) {
	by := ""
	switch {
	case pl.svc.Update.Reschedule:
		by = "update { reschedule = true }"
	case pl.p.opts.RescheduleUnreachable:
		by = "-reschedule-unreachable"
	default:
		return nil, unknown
	}
	hosts := strings.Join(hidden, ", ")
	if vols := namedVolumeSources(pl.svc); len(vols) > 0 {
		pl.p.plan.Warnings = append(pl.p.plan.Warnings, fmt.Sprintf(
			"service %q %s not rescheduled off %s (%s): it mounts named volume %s, and named volumes are never moved",
			pl.svc.Name, strings.TrimSuffix(strings.TrimSuffix(replicaList(unknown), " is"), " are"), hosts, by, strings.Join(vols, ", ")))
		return nil, unknown
	}
	pl.rescheduled = map[int]string{}
	pl.rescheduleBy = by
	pl.rescheduleAre = are
	for _, i := range unknown {
		pl.rescheduled[i] = hosts
	}
	return unknown, nil
}

// warnRescheduled says which replicas were rescheduled, and where.
func (pl *placement) warnRescheduled() {
	if len(pl.rescheduled) == 0 {
		return
	}
	idx := slices.Sorted(maps.Keys(pl.rescheduled))
	hosts := pl.rescheduled[idx[0]]
	var where []string
	for _, i := range idx {
		where = append(where, fmt.Sprintf("replica %d to %s", i, pl.placed[i].name()))
	}
	pl.p.plan.Warnings = append(pl.p.plan.Warnings, fmt.Sprintf(
		"service %q %s on no reachable node and may run on %s, which %s unreachable: rescheduled (%s): %s; once %s %s back, the next plan removes the duplicates there",
		pl.svc.Name, replicaList(idx), hosts, pl.rescheduleAre, pl.rescheduleBy, strings.Join(where, ", "), hosts, pl.rescheduleAre))
}

// unrescheduled leaves alone, with a warning, the rescheduled replicas
// that fit on no reachable node (they may still run on the unreachable
// one), and returns the other replicas that failed to fit.
func (pl *placement) unrescheduled(failed []int) []int {
	var left, out []int
	for _, i := range failed {
		if _, ok := pl.rescheduled[i]; ok {
			delete(pl.rescheduled, i)
			left = append(left, i)
			continue
		}
		out = append(out, i)
	}
	if len(left) > 0 {
		var why []string
		for _, n := range pl.p.nodes {
			if r, ok := pl.ruled[n.name()]; ok && n.reachable {
				why = append(why, n.name()+": "+r)
			}
		}
		pl.p.plan.Warnings = append(pl.p.plan.Warnings, fmt.Sprintf(
			"service %q %s not rescheduled: no reachable node can take %s (%s); left alone on the unreachable node",
			pl.svc.Name, strings.TrimSuffix(strings.TrimSuffix(replicaList(left), " is"), " are"),
			map[bool]string{true: "it", false: "them"}[len(left) == 1], strings.Join(why, "; ")))
	}
	return out
}

// namedVolumeSources lists the named volumes (not bind mounts) the service
// mounts.
func namedVolumeSources(svc *config.Service) []string {
	var out []string
	for _, v := range svc.Volumes {
		if !v.IsBind() {
			out = append(out, v.Source)
		}
	}
	return out
}

// nodeBound is how many replicas of the service any one node can hold at
// most, from the configuration alone, and why; -1 when the configuration
// sets no bound. An unreachable node's free CPU and memory are unknown
// (its engine was not read), so resources set no bound here.
func (pl *placement) nodeBound() (int, string) {
	bound, why := -1, ""
	if hp := pl.d.hostPorts(); len(hp) > 0 {
		bound, why = 1, fmt.Sprintf("it publishes host port %s: one replica per node", hp[0].Host())
	}
	if m := pl.svc.Placement.MaxPerNode; m > 0 && (bound < 0 || m < bound) {
		bound, why = m, fmt.Sprintf("max_per_node = %d", m)
	}
	return bound, why
}

func replicaList(l []int) string {
	s := make([]string, len(l))
	for i, r := range l {
		s[i] = strconv.Itoa(r)
	}
	if len(l) == 1 {
		return "replica " + s[0] + " is"
	}
	return "replicas " + strings.Join(s, ", ") + " are"
}

// warnDataLeft says, for each replica placed away from the node holding its
// data, that the data stays behind.
func (pl *placement) warnDataLeft() {
	for _, i := range slices.Sorted(maps.Keys(pl.dataLeft)) {
		n := pl.placed[i]
		if n == nil {
			continue
		}
		m := pl.dataLeft[i]
		from, vols := m.home.node.name(), strings.Join(m.home.vols, ", ")
		pl.p.plan.Warnings = append(pl.p.plan.Warnings, fmt.Sprintf(
			"service %q replica %d moves from %s to %s: the data in volume %s stays behind on %s", pl.svc.Name, i, from, n.name(), vols, from))
		pl.dataNote[i] = fmt.Sprintf("its volume %s is on %s (%s): the data in volume %s stays behind on %s", vols, from, m.why, vols, from)
	}
}

// preferRescheduled puts first, among a replica's running containers, the
// one created when the replica was rescheduled off an unreachable node:
// once that node is back, the container there is the duplicate.
func preferRescheduled(l []ownContainer) []ownContainer {
	slices.SortStableFunc(l, func(a, b ownContainer) int {
		ra := a.c.Running() && a.c.Labels[LabelRescheduled] != ""
		rb := b.c.Running() && b.c.Labels[LabelRescheduled] != ""
		switch {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return 0
	})
	return l
}

// preferRunning orders a replica's containers: running first, then by node.
func preferRunning(l []ownContainer) []ownContainer {
	out := slices.Clone(l)
	slices.SortStableFunc(out, func(a, b ownContainer) int {
		switch ra, rb := a.c.Running(), b.c.Running(); {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return 0
	})
	return out
}

// fit says why node n cannot take one more replica, or "" if it can.
func (pl *placement) fit(n *nodeView) (reason, kind string) {
	svc := pl.svc
	if m := svc.Placement.MaxPerNode; m > 0 && n.count >= m {
		return fmt.Sprintf("max_per_node = %d reached", m), "placement.max_per_node"
	}
	for i, pt := range pl.d.ports {
		if pt.Ingress() {
			continue // each replica gets its own backend port
		}
		for _, h := range n.ports {
			if h.Overlaps(pt.Host()) {
				return fmt.Sprintf("port %s is held by %s", pt.Host(), h.Who()), "port[" + strconv.Itoa(i) + "]"
			}
		}
	}
	if need := pl.d.template.NanoCPUs; need > 0 && n.cpus-n.usedCPUs < need {
		return fmt.Sprintf("not enough CPU: needs %s, %s free of %s%s", cpuString(need), cpuString(max(0, n.cpus-n.usedCPUs)), cpuString(n.cpus),
			reservedByOthers(n.foreignCPUs, cpuString)), "resources.cpus"
	}
	if need := pl.d.template.MemoryBytes; need > 0 && n.memory-n.usedMem < need {
		return fmt.Sprintf("not enough memory: needs %s, %s free of %s%s", memString(need), memString(max(0, n.memory-n.usedMem)), memString(n.memory),
			reservedByOthers(n.foreignMem, memString)), "resources.memory"
	}
	return "", ""
}

// reservedByOthers says how much of a resource other berth projects hold on
// the node, if any.
func reservedByOthers(v int64, format func(int64) string) string {
	if v <= 0 {
		return ""
	}
	return " (" + format(v) + " reserved by other berth projects)"
}

func cpuString(nano int64) string {
	return strconv.FormatFloat(float64(nano)/1e9, 'f', -1, 64) + " CPUs"
}

func memString(b int64) string {
	const mi = 1 << 20
	if b%(1<<30) == 0 && b > 0 {
		return strconv.FormatInt(b>>30, 10) + " GiB"
	}
	return strconv.FormatFloat(float64(b)/mi, 'f', -1, 64) + " MiB"
}

// claim records a replica of the service on n.
func (pl *placement) claim(n *nodeView, replica int) {
	n.count++
	n.usedCPUs += pl.d.template.NanoCPUs
	n.usedMem += pl.d.template.MemoryBytes
	for _, pt := range pl.d.hostPorts() {
		n.ports = append(n.ports, PortHold{HostPort: pt.Host(), Service: pl.svc.Name, Replica: replica})
	}
	if g := pl.nodeGroup[n]; g != nil {
		g.count++
	}
}

func (pl *placement) rule(n *nodeView, reason, kind string) {
	if _, ok := pl.ruled[n.name()]; !ok {
		pl.ruled[n.name()] = reason
		pl.kinds[kind]++
	}
}

// eligibility evaluates reachability and the constraint for every node.
func (pl *placement) eligibility() {
	pl.ruled = map[string]string{}
	pl.kinds = map[string]int{}
	var c *exprMemo
	if e := pl.svc.Placement.Constraint; e != nil {
		c = newExprMemo(e)
	}
	for _, n := range pl.p.nodes {
		n.count = 0
		if !n.reachable {
			pl.rule(n, "unreachable: "+n.reason, "replicas")
			continue
		}
		if n.cfg != nil && n.cfg.Drain {
			pl.rule(n, "drained (drain = true)", "replicas")
			continue
		}
		if c != nil {
			v, diags := c.value(n)
			switch {
			case diags.HasErrors():
				pl.rule(n, "constraint cannot be evaluated: "+diagText(diags), "placement.constraint")
				continue
			case v.IsNull() || !v.IsKnown() || !v.Type().Equals(cty.Bool):
				pl.rule(n, "constraint is not a bool", "placement.constraint")
				continue
			case v.False():
				pl.rule(n, "constraint is false", "placement.constraint")
				continue
			}
		}
		pl.base = append(pl.base, n)
	}
}

func diagText(diags hcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			s := d.Summary
			if d.Detail != "" {
				s += ": " + d.Detail
			}
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// spreadKey is the node's value of the spread expression.
func (pl *placement) spreadKey(n *nodeView) string {
	if pl.spread == nil {
		return n.name()
	}
	v, diags := pl.spread.value(n)
	if diags.HasErrors() || v.IsNull() || !v.IsKnown() {
		return ""
	}
	if s, err := convert.Convert(v, cty.String); err == nil {
		return s.AsString()
	}
	return ""
}

// group is a set of nodes sharing a spread value.
type group struct {
	key   string
	count int
	nodes loadHeap[*nodeView]
}

// loaded is a node or a group of nodes: how many of the service's replicas
// it has, and its name.
type loaded interface {
	load() (count int, name string)
}

func (n *nodeView) load() (int, string) { return n.count, n.nm }
func (g *group) load() (int, string)    { return g.count, g.key }

// loadHeap holds nodes or groups, least loaded first, ties by name.
type loadHeap[T loaded] []T

func (h loadHeap[T]) Len() int { return len(h) }
func (h loadHeap[T]) Less(i, j int) bool {
	ci, ni := h[i].load()
	cj, nj := h[j].load()
	if ci != cj {
		return ci < cj
	}
	return ni < nj
}
func (h loadHeap[T]) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *loadHeap[T]) Push(x any)   { *h = append(*h, x.(T)) }
func (h *loadHeap[T]) Pop() any     { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

// placeNew puts replicas on the least loaded group, then the least loaded
// node in it, ties broken by name. A node that cannot take a replica now
// never can later in this plan (capacity only shrinks), so it is dropped.
func (pl *placement) placeNew(missing []int) []int {
	if len(missing) == 0 {
		return nil
	}
	var gh loadHeap[*group]
	for _, g := range pl.groups {
		if len(g.nodes) > 0 {
			heap.Init(&g.nodes)
			gh = append(gh, g)
		}
	}
	slices.SortFunc(gh, func(a, b *group) int { return strings.Compare(a.key, b.key) })
	heap.Init(&gh)
	var failed []int
	for _, r := range missing {
		ok := false
		for gh.Len() > 0 {
			g := gh[0]
			if g.nodes.Len() == 0 {
				heap.Pop(&gh)
				continue
			}
			n := g.nodes[0]
			if reason, kind := pl.fit(n); reason != "" {
				pl.rule(n, reason, kind)
				heap.Pop(&g.nodes)
				if g.nodes.Len() == 0 {
					heap.Pop(&gh)
				}
				continue
			}
			pl.claim(n, r)
			pl.placed[r] = n
			heap.Fix(&g.nodes, 0)
			heap.Fix(&gh, 0)
			ok = true
			break
		}
		if !ok {
			failed = append(failed, r)
		}
	}
	return failed
}

// unreachableHosts lists the unreachable nodes that may run replicas of svc:
// those whose placement constraint is not known to be false from what is
// known of them without a connection (name, address, labels).
func (p *planState) unreachableHosts(svc *config.Service) []string {
	var out []string
	for _, n := range p.nodes {
		if n.reachable {
			continue
		}
		if e := svc.Placement.Constraint; e != nil {
			attrs := config.NodeValue(config.NodeInfo{Name: n.cfg.Name, Address: n.cfg.Address, Labels: n.cfg.Labels}).AsValueMap()
			attrs["cpus"], attrs["memory"] = cty.UnknownVal(cty.Number), cty.UnknownVal(cty.Number)
			attrs["arch"], attrs["os"] = cty.UnknownVal(cty.String), cty.UnknownVal(cty.String)
			v, diags := e.Value(config.PlacementContext(cty.ObjectVal(attrs)))
			if !diags.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type().Equals(cty.Bool) && v.False() {
				continue
			}
		}
		out = append(out, n.name())
	}
	return out
}

// failure explains why replicas could not be placed, per node.
func (pl *placement) failure(unplaced int) *hcl.Diagnostic {
	svc := pl.svc
	var lines []string
	for _, n := range pl.p.nodes {
		if r, ok := pl.ruled[n.name()]; ok {
			lines = append(lines, fmt.Sprintf("  - %s: %s", n.name(), r))
		}
	}
	if len(pl.p.nodes) == 0 {
		lines = append(lines, "  - no nodes are configured")
	}
	// Point at the rule that ruled out the most nodes.
	kind, most := "replicas", 0
	for _, k := range slices.Sorted(maps.Keys(pl.kinds)) {
		if pl.kinds[k] > most {
			kind, most = k, pl.kinds[k]
		}
	}
	path := kind
	if strings.HasPrefix(kind, "port[") {
		path = kind + ".published"
		if _, ok := svc.AttrRanges[path]; !ok {
			path = kind
		}
	}
	r := svc.Range(path)
	placedN := svc.Replicas - unplaced
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Cannot place service %q: %d of %d replicas fit", svc.Name, placedN, svc.Replicas),
		Detail:   "Nodes ruled out:\n" + strings.Join(lines, "\n"),
		Subject:  &r,
	}
}
