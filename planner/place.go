package planner

import (
	"container/heap"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// LabelReplicas records the service's replica count when the container was
// created, so a replica removed by hand shows as drift rather than as new.
const LabelReplicas = "berth.replicas"

// assignPorts fills in published ports left out of the configuration: a port
// already assigned to the service's containers is kept; otherwise the lowest
// port of the auto range that is free on every reachable node and not used by
// any service.
func (p *planState) assignPorts(order []*config.Service) {
	p.desired = map[string]*serviceDesired{}
	taken := map[string]bool{}
	for _, n := range p.nodes {
		for _, h := range n.ports {
			taken[h.Key()] = true
		}
	}
	for _, s := range p.cfg.Services {
		for _, pt := range s.Ports {
			if pt.Published != 0 {
				taken[pt.Host().Key()] = true
			}
		}
	}
	resolved := map[string][]PortSpec{}
	// First keep what is already assigned, then assign new ones, so a new
	// service never takes a port an existing one keeps.
	for _, s := range order {
		ports := make([]PortSpec, len(s.Ports))
		for i, pt := range s.Ports {
			ports[i] = PortSpec{Target: pt.Target, Published: pt.Published, Protocol: pt.Protocol, HostIP: pt.HostIP}
			if pt.Published == 0 {
				ports[i].Assigned = true
				if kept := p.keptPort(s.Name, pt); kept != 0 {
					ports[i].Published = kept
					taken[ports[i].Host().Key()] = true
				}
			}
		}
		resolved[s.Name] = ports
	}
	for _, s := range order {
		ports := resolved[s.Name]
		for i := range ports {
			if ports[i].Assigned && ports[i].Published == 0 {
				for c := config.AutoPortMin; c <= config.AutoPortMax; c++ {
					h := HostPort{Protocol: ports[i].Protocol, Port: c}
					if !taken[h.Key()] {
						ports[i].Published = c
						taken[h.Key()] = true
						break
					}
				}
			}
		}
		p.ports(s.Name, ports)
	}
}

func (p *planState) ports(service string, ports []PortSpec) {
	if p.resolvedPorts == nil {
		p.resolvedPorts = map[string][]PortSpec{}
	}
	p.resolvedPorts[service] = ports
}

// keptPort returns the host port the service's containers already publish
// for this port block's target, if it is in the auto range.
func (p *planState) keptPort(service string, pt config.Port) int {
	best, bestReplica := 0, 0
	for _, oc := range p.own[service] {
		for _, b := range oc.c.Ports {
			if b.ContainerPort == pt.Target && b.Protocol == pt.Protocol &&
				b.HostPort >= config.AutoPortMin && b.HostPort <= config.AutoPortMax {
				if best == 0 || oc.replica < bestReplica || (oc.replica == bestReplica && b.HostPort < best) {
					best, bestReplica = b.HostPort, oc.replica
				}
			}
		}
	}
	return best
}

// placement is one service's placement in progress.
type placement struct {
	p         *planState
	svc       *config.Service
	d         *serviceDesired
	base      []*nodeView       // reachable nodes whose constraint holds
	ruled     map[string]string // node name -> why it cannot take a replica
	kinds     map[string]int    // reason kind -> nodes ruled out by it
	groups    map[string]*group // spread value -> group
	spread    *exprMemo
	nodeGroup map[*nodeView]*group
	// dataNote says, per replica placed by its data, where its volume is.
	dataNote map[int]string
	// dataLeft holds, per replica whose data node could not take it, that
	// node and why.
	dataLeft map[int]dataMiss
}

// dataMiss is a replica's data node that could not take the replica.
type dataMiss struct {
	home dataHome
	why  string
}

// fit says why node n cannot take one more replica, or "" if it can.
func (pl *placement) fit(n *nodeView) (reason, kind string) {
	svc := pl.svc
	if m := svc.Placement.MaxPerNode; m > 0 && n.count >= m {
		return fmt.Sprintf("max_per_node = %d reached", m), "placement.max_per_node"
	}
	for i, pt := range pl.d.ports {
		for _, h := range n.ports {
			if h.Overlaps(pt.Host()) {
				return fmt.Sprintf("port %s is held by %s", pt.Host(), h.Holder), "port[" + strconv.Itoa(i) + "]"
			}
		}
	}
	if need := pl.d.template.NanoCPUs; need > 0 && n.cpus-n.usedCPUs < need {
		return fmt.Sprintf("not enough CPU: needs %s, %s free of %s%s", cpuString(need), cpuString(max64(0, n.cpus-n.usedCPUs)), cpuString(n.cpus),
			reservedByOthers(n.foreignCPUs, cpuString)), "resources.cpus"
	}
	if need := pl.d.template.MemoryBytes; need > 0 && n.memory-n.usedMem < need {
		return fmt.Sprintf("not enough memory: needs %s, %s free of %s%s", memString(need), memString(max64(0, n.memory-n.usedMem)), memString(n.memory),
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

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
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
	for _, pt := range pl.d.ports {
		n.ports = append(n.ports, PortHold{HostPort: pt.Host(), Holder: replicaHolder(pl.svc.Name, replica), Service: pl.svc.Name})
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
	nodes nodeHeap
	index int
}

type nodeHeap []*nodeView

func (h nodeHeap) Len() int { return len(h) }
func (h nodeHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count < h[j].count
	}
	return h[i].nm < h[j].nm
}
func (h nodeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)   { *h = append(*h, x.(*nodeView)) }
func (h *nodeHeap) Pop() any     { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

type groupHeap []*group

func (h groupHeap) Len() int { return len(h) }
func (h groupHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count < h[j].count
	}
	return h[i].key < h[j].key
}
func (h groupHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *groupHeap) Push(x any) {
	g := x.(*group)
	g.index = len(*h)
	*h = append(*h, g)
}
func (h *groupHeap) Pop() any { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

// placeNew puts replicas on the least loaded group, then the least loaded
// node in it, ties broken by name. A node that cannot take a replica now
// never can later in this plan (capacity only shrinks), so it is dropped.
func (pl *placement) placeNew(missing []int, placed []*nodeView) []int {
	if len(missing) == 0 {
		return nil
	}
	var gh groupHeap
	for _, g := range pl.groups {
		if len(g.nodes) > 0 {
			heap.Init(&g.nodes)
			gh = append(gh, g)
		}
	}
	sort.Slice(gh, func(i, j int) bool { return gh[i].key < gh[j].key })
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
			placed[r] = n
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

// planService places the service's replicas and diffs each against what runs.
func (p *planState) planService(svc *config.Service) hcl.Diagnostics {
	image := svc.Image
	if svc.Build != nil {
		if b := p.opts.BuildImages[svc.Name]; b != "" {
			image = b
		}
	}
	d := resolveService(p.project, svc, image, p.resolvedPorts[svc.Name])
	p.desired[svc.Name] = d
	p.release(svc.Name)

	pl := &placement{p: p, svc: svc, d: d, groups: map[string]*group{}, nodeGroup: map[*nodeView]*group{}}
	pl.eligibility()
	if e := svc.Placement.Spread; e != nil {
		pl.spread = newExprMemo(e)
	}
	baseSet := map[*nodeView]bool{}
	for _, n := range pl.base {
		baseSet[n] = true
		k := pl.spreadKey(n)
		g := pl.groups[k]
		if g == nil {
			g = &group{key: k}
			pl.groups[k] = g
		}
		g.nodes = append(g.nodes, n)
		pl.nodeGroup[n] = g
	}

	R := svc.Replicas
	byIndex := map[int][]ownContainer{}
	maxRecorded := 0
	for _, oc := range p.own[svc.Name] {
		byIndex[oc.replica] = append(byIndex[oc.replica], oc)
		if n, err := strconv.Atoi(oc.c.Labels[LabelReplicas]); err == nil && n > maxRecorded {
			maxRecorded = n
		}
	}
	placed := make([]*nodeView, R+1)
	kept := make([]*ownContainer, R+1)
	// Pass 1: a replica that runs on a still-eligible node stays there.
	for i := 1; i <= R; i++ {
		cands := preferRunning(byIndex[i])
		for k := range cands {
			oc := &cands[k]
			if !baseSet[oc.node] {
				continue
			}
			if reason, kind := pl.fit(oc.node); reason != "" {
				pl.rule(oc.node, reason, kind)
				continue
			}
			pl.claim(oc.node, i)
			placed[i], kept[i] = oc.node, oc
			break
		}
	}
	// Pass 2: place the rest. A replica found on no reachable node may run
	// on an unreachable node that could host it, whose containers are
	// unknown: it is left alone there rather than created elsewhere (a
	// transport error is never read as "no container"; a copy elsewhere
	// would run twice once the node is back, with its data split).
	hidden := p.unreachableHosts(svc)
	var missing, unknown []int
	for i := 1; i <= R; i++ {
		switch {
		case placed[i] != nil:
		case len(hidden) > 0 && len(byIndex[i]) == 0:
			unknown = append(unknown, i)
		default:
			missing = append(missing, i)
		}
	}
	if len(unknown) > 0 {
		p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
			"service %q %s on no reachable node and may run on %s, which %s unreachable: left alone, not created elsewhere",
			svc.Name, replicaList(unknown), strings.Join(hidden, ", "), map[bool]string{true: "is", false: "are"}[len(hidden) == 1]))
	}
	missing = pl.placeOnData(missing, placed, byIndex)
	if failed := pl.placeNew(missing, placed); len(failed) > 0 {
		return hcl.Diagnostics{pl.failure(len(failed))}
	}
	for _, i := range sortedInts(pl.dataLeft) {
		if n := placed[i]; n != nil {
			m := pl.dataLeft[i]
			from, vols := m.home.node.name(), strings.Join(m.home.vols, ", ")
			p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
				"service %q replica %d moves from %s to %s: the data in volume %s stays behind on %s", svc.Name, i, from, n.name(), vols, from))
			pl.dataNote[i] = fmt.Sprintf("its volume %s is on %s (%s): the data in volume %s stays behind on %s", vols, from, m.why, vols, from)
		}
	}

	// Pass 3: actions.
	var deletes, creates, changes []Action
	used := map[*Container]bool{}
	for i := 1; i <= R; i++ {
		n := placed[i]
		if n == nil {
			continue // may run on an unreachable node
		}
		if oc := kept[i]; oc != nil {
			used[oc.c] = true
			// Compare against the template first; a replica that needs
			// nothing (the common case) costs no spec of its own.
			if a, ok := p.diffReplica(d, oc, &d.template, ContainerName(p.project, svc.Name, i), n); ok {
				a.Spec = d.replicaSpec(p.project, n.name(), i)
				a.Spec.Labels[LabelReplicas] = strconv.Itoa(R)
				changes = append(changes, a)
			} else {
				p.plan.unchanged(svc.Name)
			}
			continue
		}
		spec := d.replicaSpec(p.project, n.name(), i)
		spec.Labels[LabelReplicas] = strconv.Itoa(R)
		// Moved: an old container of this replica elsewhere.
		if cands := preferRunning(byIndex[i]); len(cands) > 0 {
			oc := cands[0]
			used[oc.c] = true
			why := pl.ruled[oc.node.name()]
			if why == "" {
				why = "not eligible"
			}
			a := Action{Kind: Replace, Service: svc.Name, Replica: i, Node: n.name(), Container: spec.Name,
				Old: ref(oc.c, oc.node.name()), Spec: spec,
				Reason: fmt.Sprintf("moved from %s to %s: %s", oc.node.name(), n.name(), why)}
			a.Order = svc.Update.Order
			if a.Order == "" {
				a.Order = StartFirst
			}
			if vols := namedVolumes(oc.c); len(vols) > 0 {
				w := fmt.Sprintf("service %q replica %d moves from %s to %s: the data in volume %s stays behind on %s",
					svc.Name, i, oc.node.name(), n.name(), strings.Join(vols, ", "), oc.node.name())
				a.Reason += "; " + w[strings.Index(w, "the data"):]
				p.plan.Warnings = append(p.plan.Warnings, w)
			}
			if ps := p.spec(oc.c.Labels); ps.ok {
				old := ps.fields
				a.Changes = diffFields(old, d.fields)
			}
			changes = append(changes, a)
			continue
		}
		a := Action{Kind: Create, Service: svc.Name, Replica: i, Node: n.name(), Container: spec.Name, Spec: spec,
			Reason: "no existing container"}
		if i <= maxRecorded {
			a.Drift = true
			a.Reason = "drift: the container is missing (removed outside berth, or on a node no longer configured)"
		}
		if note := pl.dataNote[i]; note != "" {
			a.Reason += "; " + note
		}
		creates = append(creates, a)
	}
	for _, oc := range p.own[svc.Name] {
		if used[oc.c] {
			continue
		}
		switch {
		case oc.replica == 0:
			a := p.deleteAction(oc, "drift: the replica label was changed outside berth")
			a.Drift = true
			deletes = append(deletes, a)
		case oc.replica > R:
			deletes = append(deletes, p.deleteAction(oc, fmt.Sprintf("scale down to %d replicas", R)))
		default:
			a := p.deleteAction(oc, fmt.Sprintf("duplicate of replica %d (kept on %s)", oc.replica, placed[oc.replica].name()))
			a.Drift = true
			deletes = append(deletes, a)
		}
	}
	p.addBatch(deletes)
	p.addBatch(creates)
	par := svc.Update.Parallelism
	if par <= 0 {
		par = len(changes)
	}
	for len(changes) > 0 {
		k := par
		if k > len(changes) {
			k = len(changes)
		}
		p.addBatch(changes[:k:k])
		changes = changes[k:]
	}

	sp := ServicePlan{Name: svc.Name, Image: image, Replicas: R, Placement: map[string]string{}, Ports: d.ports, Volumes: serviceVolumes(svc)}
	if len(svc.DependsOn) > 0 {
		sp.DependsOn = append([]string(nil), svc.DependsOn...)
		sort.Strings(sp.DependsOn)
	}
	for i := 1; i <= R; i++ {
		if placed[i] != nil {
			sp.Placement[strconv.Itoa(i)] = placed[i].name()
		}
	}
	p.plan.Services = append(p.plan.Services, sp)
	return nil
}

func (pl *Plan) unchanged(service string) {
	if pl.Unchanged == nil {
		pl.Unchanged = map[string]int{}
	}
	pl.Unchanged[service]++
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

// preferRunning orders a replica's containers: running first, then by node.
func preferRunning(l []ownContainer) []ownContainer {
	out := append([]ownContainer(nil), l...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := out[i].c.Running(), out[j].c.Running()
		return ri && !rj
	})
	return out
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
	kinds := make([]string, 0, len(pl.kinds))
	for k := range pl.kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
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

// serviceVolumes lists the named volumes (not bind mounts) a service mounts,
// sorted, each once.
func serviceVolumes(svc *config.Service) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range svc.Volumes {
		if v.IsBind() || v.Source == "" || seen[v.Source] {
			continue
		}
		seen[v.Source] = true
		out = append(out, v.Source)
	}
	sort.Strings(out)
	return out
}

// dataHome is a node holding named volumes of a replica.
type dataHome struct {
	node *nodeView
	vols []string
	// exact: the volumes carry the replica's labels; otherwise they carry
	// no berth label and match by name only.
	exact bool
}

// volumeOwner says whose data a volume on a node is, by its labels: this
// service's replica r ("" when it has no replica label, or no berth label
// at all), and whether it may belong to the service at all.
func (p *planState) volumeOwner(v Volume, service string) (replica string, ours bool) {
	proj, labelled := v.Labels[LabelProject]
	if !labelled {
		return "", true
	}
	if proj != p.project || v.Labels[LabelKind] != "" || v.Labels[LabelService] != service {
		return "", false
	}
	return v.Labels[LabelReplica], true
}

// placeOnData puts each replica that has no container anywhere on the node
// that holds its named volumes (after destroy kept them, or after its
// container was removed by hand), so that it finds its data again. A volume
// with the replica's labels says so exactly; a volume with no berth label
// (made by an older berth or by hand) matches by name, for one replica only
// and not if a container of the service already mounts it. A replica whose
// data node cannot take it is placed as usual, and the plan says that its
// data stays behind. It returns the replicas still to place.
func (pl *placement) placeOnData(missing []int, placed []*nodeView, byIndex map[int][]ownContainer) []int {
	pl.dataNote, pl.dataLeft = map[int]string{}, map[int]dataMiss{}
	vols := serviceVolumes(pl.svc)
	if len(vols) == 0 || len(missing) == 0 {
		return missing
	}
	p := pl.p
	wanted := map[string]bool{}
	for _, v := range vols {
		wanted[v] = true
	}
	key := func(n *nodeView, vol string) string { return n.name() + "\x00" + vol }
	// Unlabelled volumes already mounted by the service's containers are
	// theirs.
	claimed := map[string]bool{}
	for _, oc := range p.own[pl.svc.Name] {
		for _, m := range oc.c.Mounts {
			if m.Type == "volume" {
				claimed[key(oc.node, m.Name)] = true
			}
		}
	}
	homes := func(i int) []dataHome {
		var exact, loose []dataHome
		for _, n := range p.nodes {
			if !n.reachable {
				continue
			}
			var ex, lo []string
			for _, v := range n.state.Volumes {
				if !wanted[v.Name] {
					continue
				}
				r, ours := p.volumeOwner(v, pl.svc.Name)
				switch {
				case !ours:
				case r == strconv.Itoa(i):
					ex = append(ex, v.Name)
				case r == "" && !claimed[key(n, v.Name)]:
					lo = append(lo, v.Name)
				}
			}
			if len(ex) > 0 {
				sort.Strings(ex)
				exact = append(exact, dataHome{node: n, vols: ex, exact: true})
			} else if len(lo) > 0 {
				sort.Strings(lo)
				loose = append(loose, dataHome{node: n, vols: lo})
			}
		}
		return append(exact, loose...)
	}
	base := map[*nodeView]bool{}
	for _, n := range pl.base {
		base[n] = true
	}
	var rest []int
	for _, i := range missing {
		if len(byIndex[i]) > 0 {
			rest = append(rest, i) // its container is elsewhere: a move
			continue
		}
		hs := homes(i)
		if len(hs) == 0 {
			rest = append(rest, i)
			continue
		}
		done := false
		var first dataMiss
		for k, h := range hs {
			why := ""
			if !base[h.node] {
				why = pl.ruled[h.node.name()]
				if why == "" {
					why = "not eligible"
				}
			} else if reason, kind := pl.fit(h.node); reason != "" {
				pl.rule(h.node, reason, kind)
				why = reason
			}
			if why != "" {
				if k == 0 {
					first = dataMiss{home: h, why: why}
				}
				continue
			}
			pl.claim(h.node, i)
			placed[i] = h.node
			if !h.exact {
				for _, v := range h.vols {
					claimed[key(h.node, v)] = true
				}
			}
			pl.dataNote[i] = fmt.Sprintf("placed on %s, which holds its volume %s", h.node.name(), strings.Join(h.vols, ", "))
			done = true
			break
		}
		if !done {
			pl.dataLeft[i] = first
			rest = append(rest, i)
		}
	}
	return rest
}

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
