// Package planner decides what to change: given the desired configuration and
// the live state of every node, it places each service's replicas on nodes
// and lists the actions that bring the cluster to the configuration.
//
// The planner is pure: no I/O, no context, no clients, no clock, no
// randomness. The same configuration and live state give a byte-identical
// plan.
//
// One plan reads in this order: Make (planner.go) recovers an interrupted
// apply (recover.go) and indexes the live state once (observed.go); ports
// left to berth are assigned (ports.go); each service is placed
// (placement.go, data locality in locality.go) and its replicas reconciled
// into actions (reconcile.go, compared through labels.go); images are
// planned (images.go) and each node fingerprinted (fingerprint.go).
package planner

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Options adjust a plan.
type Options struct {
	// Recover says how to treat an interrupted apply found on the nodes:
	// "rollback" (default: restore the old containers) or "forward" (keep
	// the new containers, remove the old ones).
	Recover string
	// BuildImages maps a service with a build block to the content-tagged
	// image reference its build produces (computed by the caller, who reads
	// the build context).
	BuildImages map[string]string
	// LocalImages are the images on the engine running berth, so the plan
	// can say which missing images will be sent rather than pulled.
	LocalImages []Image
	// LocalEngineID is the ID of that engine: a node with the same engine
	// gets a built image from the build itself, with nothing to send.
	LocalEngineID string
	// Destroy plans the removal of every container of the project.
	Destroy bool
	// Interrupted are the IDs of applies known to have been killed (their
	// lock was left by a dead process): the containers they created are
	// recovered even if none was renamed aside yet.
	Interrupted []string
	// RescheduleUnreachable places the replicas that may run on an
	// unreachable node on reachable nodes, for every service (a service's
	// update { reschedule = true } does it for that service): except a
	// replica with a named volume, whose data stays where it is.
	RescheduleUnreachable bool
	// Rollback, when set, replaces each service's container spec with the
	// revision an earlier apply recorded (berth rollback): replicas,
	// placement, ports and the update policy stay as configured.
	Rollback *Rollback
}

// Make computes the plan that brings live to cfg. Errors (a service that
// cannot be placed, an image that cannot be found) are diagnostics pointing
// at the configuration.
func Make(cfg *config.Config, live *Live, opts Options) (*Plan, hcl.Diagnostics) {
	if live == nil {
		live = &Live{}
	}
	p := &planState{cfg: cfg, opts: opts, project: cfg.Project.Name}
	p.plan = &Plan{FormatVersion: FormatVersion, Project: p.project, Actions: []Action{}, Services: []ServicePlan{}, Destroy: opts.Destroy}
	original := live
	live, p.obs = p.recover(live)
	p.buildNodes(live)
	p.collectOwn()
	p.initLevels()
	if diags := p.sharedEngines(); diags.HasErrors() {
		return nil, diags
	}

	order, diags := serviceOrder(cfg)
	if diags.HasErrors() {
		return nil, diags
	}
	p.ing = &ingressState{}
	if !opts.Destroy {
		if diags := p.planIngress(); diags.HasErrors() {
			return nil, diags
		}
		p.ing.start = p.startTable(live)
	} else {
		p.addFirst(append(p.deletesOf(IngressService, "destroy"), p.deletesOf(IngressEdgeService, "destroy")...))
	}
	p.removedServices()
	if opts.Rollback != nil && !opts.Destroy {
		p.plan.RollbackTo = opts.Rollback.ApplyID
		p.rollbackWarnings()
	}
	if !opts.Destroy {
		p.assignPorts(order)
		for _, svc := range order {
			diags = append(diags, p.planService(svc)...)
		}
	} else {
		// Deletes go in reverse depends_on order: dependents first.
		names := make([]string, len(order))
		deps := map[string][]string{}
		deletes := map[string][]Action{}
		for i, s := range order {
			names[i] = s.Name
			deps[s.Name] = s.Dependencies()
			deletes[s.Name] = p.deletesOf(s.Name, "destroy")
		}
		p.addDeletesReversed(p.lv.base, names, deps, deletes)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	diags = append(diags, p.checkNames()...)
	if diags.HasErrors() {
		return nil, diags
	}
	diags = append(diags, p.planImages()...)
	if diags.HasErrors() {
		return nil, diags
	}
	diags = append(diags, p.planNetworks()...)
	if diags.HasErrors() {
		return nil, diags
	}
	p.finish()
	p.finishIngress(live)
	p.plan.Nodes = p.snapshots(original)
	p.plan.ID = planID(p.plan)
	return p.plan, diags
}

type planState struct {
	cfg     *config.Config
	opts    Options
	project string
	plan    *Plan
	// obs is the live state after recovery, indexed.
	obs *Observed

	nodes []*nodeView // sorted by name; configured nodes only
	// removed are the nodes no longer configured that the live state
	// holds (recorded by an earlier apply), sorted by name: their
	// containers are moved or removed, nothing is placed there.
	removed    []*nodeView
	nodeByName map[string]*nodeView // configured and removed nodes
	// own holds this project's containers by service (not renamed aside),
	// on configured reachable nodes, sorted by replica, node and name.
	own map[string][]ownContainer
	// warnedRollback holds the services whose rolled-back revision the
	// plan replaces (warned about once each).
	warnedRollback map[string]bool
	// desired by service name, for ServicePlan.
	desired map[string]*serviceDesired
	// specCache holds parsed berth.spec labels by value.
	specCache map[string]parsedSpec
	// resolvedPorts by service name, auto-assigned ports filled in.
	resolvedPorts map[string][]PortSpec
	// lv holds the batches of actions in execution order (batches.go).
	lv *levels
	// ing is the ingress work (ingress.go).
	ing *ingressState
	// targets are the placed services with a port, by name, for the
	// services that refer to them (refs.go).
	targets map[string]*refTarget
}

type ownContainer struct {
	c       *Container
	node    *nodeView
	replica int // 0 when the label is missing or invalid
}

// nodeView is a configured node with what placement needs to know of it.
type nodeView struct {
	nm        string
	cfg       *config.Node
	state     *NodeState
	reachable bool
	reason    string // why unreachable
	// removed: the node is no longer configured (cfg holds only its
	// recorded name and address).
	removed  bool
	value    cty.Value
	cpus     int64 // nano CPUs
	memory   int64
	usedCPUs int64
	usedMem  int64
	// foreignCPUs and foreignMem are what running containers of other
	// berth projects reserve (included in usedCPUs and usedMem).
	foreignCPUs int64
	foreignMem  int64
	// ports holds every host port taken on the node, by whom.
	ports []PortHold
	// images by reference and by ID
	imageIDs map[string]string // ref -> ID
	imageSet map[string]bool   // ID -> present
	// count of the current service's replicas placed here.
	count int
}

// portHold is a host port taken on a node during placement, and by whom.
func (n *nodeView) name() string { return n.nm }

func (p *planState) buildNodes(live *Live) {
	p.nodeByName = map[string]*nodeView{}
	for _, n := range p.cfg.Nodes {
		v := &nodeView{nm: n.Name, cfg: n, state: live.Node(n.Name)}
		switch {
		case v.state == nil:
			v.reason = "not gathered"
		case !v.state.Reachable:
			v.reason = v.state.Error
			if v.reason == "" {
				v.reason = "unreachable"
			}
		default:
			v.reachable = true
		}
		if v.reachable {
			e := v.state.Engine
			v.cpus = int64(e.CPUs) * 1e9
			v.memory = e.MemoryBytes
			v.value = config.NodeValue(config.NodeInfo{
				Name: n.Name, Address: n.Address, Labels: n.Labels,
				CPUs: e.CPUs, MemoryBytes: e.MemoryBytes, Arch: e.Arch, OS: e.OS,
			})
			v.imageIDs = map[string]string{}
			v.imageSet = map[string]bool{}
			for _, img := range v.state.Images {
				v.imageSet[img.ID] = true
				for _, t := range img.Tags {
					v.imageIDs[NormalizeRef(t)] = img.ID
				}
			}
			v.ports = slices.Clone(p.obs.Holds(n.Name))
			v.reserveForeign(p.project)
		}
		p.nodes = append(p.nodes, v)
		p.nodeByName[n.Name] = v
	}
	engines := map[string]string{}
	for _, v := range p.nodes {
		if v.reachable && v.state.Engine.ID != "" {
			engines[v.state.Engine.ID] = v.name()
		}
	}
	for _, name := range slices.Sorted(maps.Keys(live.Nodes)) {
		st := live.Nodes[name]
		if st == nil || !st.Removed || p.nodeByName[name] != nil {
			continue
		}
		if other, ok := engines[st.Engine.ID]; ok && st.Reachable && st.Engine.ID != "" {
			// The block was renamed (or another block reaches the same
			// engine): its containers are that node's.
			p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
				"node %s was removed from the configuration, but its engine is node %s's: its containers are left to node %s", name, other, other))
			continue
		}
		v := &nodeView{nm: name, cfg: &config.Node{Name: name, Address: st.Address}, state: st, removed: true,
			reachable: st.Reachable, reason: st.Error}
		if !v.reachable && v.reason == "" {
			v.reason = "unreachable"
		}
		p.removed = append(p.removed, v)
		p.nodeByName[name] = v
	}
}

// reserveForeign counts the CPU and memory that the running containers of
// other berth projects reserve on the node.
func (n *nodeView) reserveForeign(project string) {
	for i := range n.state.Foreign {
		c := &n.state.Foreign[i]
		if proj := c.Labels[LabelProject]; proj != "" && proj != project && c.Running() {
			n.foreignCPUs += c.NanoCPUs
			n.foreignMem += c.MemoryBytes
			n.usedCPUs += c.NanoCPUs
			n.usedMem += c.MemoryBytes
		}
	}
}

// collectOwn takes this project's replicas from the observed state, on the
// configured reachable nodes, and counts the CPU and memory the running
// ones reserve on their node.
func (p *planState) collectOwn() {
	p.own = map[string][]ownContainer{}
	for _, svc := range p.obs.Services() {
		for _, r := range p.obs.Replicas(svc) {
			n := p.nodeByName[r.Node]
			if n == nil || !n.reachable {
				continue
			}
			p.own[svc] = append(p.own[svc], ownContainer{c: r.Container, node: n, replica: r.Index})
			if r.Running() {
				n.usedCPUs += r.Container.NanoCPUs
				n.usedMem += r.Container.MemoryBytes
			}
		}
	}
}

// release drops what the service's current containers hold, before the
// service is placed again.
func (p *planState) release(service string) {
	for _, oc := range p.own[service] {
		n := oc.node
		if oc.c.Running() {
			n.usedCPUs -= oc.c.NanoCPUs
			n.usedMem -= oc.c.MemoryBytes
		}
		n.ports = slices.DeleteFunc(n.ports, func(h PortHold) bool { return h.Service == service })
	}
}

// serviceOrder sorts services so that dependencies come first, ties by name.
func serviceOrder(cfg *config.Config) ([]*config.Service, hcl.Diagnostics) {
	byName := map[string]*config.Service{}
	for _, s := range cfg.Services {
		byName[s.Name] = s
	}
	var out []*config.Service
	state := map[string]int{} // 1 visiting, 2 done
	var diags hcl.Diagnostics
	var visit func(s *config.Service)
	visit = func(s *config.Service) {
		switch state[s.Name] {
		case 1:
			r := s.Range("depends_on")
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Dependency cycle",
				Detail: fmt.Sprintf("Service %q is part of a depends_on cycle.", s.Name), Subject: &r})
			return
		case 2:
			return
		}
		state[s.Name] = 1
		for _, d := range s.Dependencies() {
			if ds := byName[d]; ds != nil {
				visit(ds)
			}
		}
		state[s.Name] = 2
		out = append(out, s)
	}
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		visit(byName[n])
	}
	return out, diags
}

// removedServices deletes the containers of services no longer configured,
// dependents first (as recorded in their labels).
func (p *planState) removedServices() {
	var names []string
	for _, svc := range slices.Sorted(maps.Keys(p.own)) {
		if p.cfg.Service(svc) == nil && !IsIngressProxy(svc) {
			names = append(names, svc)
		}
	}
	// Reverse dependency order: a service that depends on another goes first.
	deps := map[string][]string{}
	for _, n := range names {
		for _, oc := range p.own[n] {
			if ps := p.spec(oc.c.Labels); ps.ok {
				f := ps.fields
				deps[n] = f.DependsOn
				break
			}
		}
	}
	var order []string
	done := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, d := range deps[n] {
			if _, removed := p.own[d]; removed && p.cfg.Service(d) == nil {
				visit(d)
			}
		}
		order = append(order, n)
	}
	for _, n := range names {
		visit(n)
	}
	deletes := map[string][]Action{}
	for i := len(order) - 1; i >= 0; i-- {
		reason := "service removed from the configuration"
		if order[i] == "" {
			reason = "container has berth's project label but no service label"
		}
		deletes[order[i]] = p.deletesOf(order[i], reason)
		p.release(order[i])
	}
	p.lv.base = p.addDeletesReversed(p.lv.base, order, deps, deletes)
}

// deletesOf deletes every container of service.
func (p *planState) deletesOf(service, reason string) []Action {
	var batch []Action
	for _, oc := range p.own[service] {
		batch = append(batch, p.deleteAction(oc, reason))
	}
	return batch
}

// actionPorts fills in an action's ports from its spec, when it has one and
// they are not set yet.
func actionPorts(a *Action) {
	if a.Ports != nil {
		return
	}
	if a.Spec != nil {
		a.Ports = append(make([]PortSpec, 0, len(a.Spec.Ports)), a.Spec.Ports...)
		return
	}
	a.Ports = []PortSpec{}
}

func ref(c *Container, node string) *ContainerRef {
	return &ContainerRef{ID: c.ID, Name: c.Name, Node: node, Image: c.Image, ImageID: c.ImageID}
}

// finish numbers batches and steps, fills ServicePlans, warnings and the ID.
func (p *planState) finish() {
	step := 0
	total := 0
	for _, b := range p.lv.batches {
		total += len(b)
	}
	p.plan.Actions = make([]Action, 0, total)
	batch := 0
	for _, b := range p.lv.batches {
		if len(b) == 0 {
			continue
		}
		batch++
		for _, a := range b {
			step++
			a.Batch = batch
			a.Step = step
			actionPorts(&a)
			p.plan.Actions = append(p.plan.Actions, a)
		}
	}
	for i := range p.plan.Recovery {
		p.plan.Recovery[i].Step = i + 1
		actionPorts(&p.plan.Recovery[i])
	}
	for _, n := range p.nodes {
		if !n.reachable {
			p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
				"node %s is unreachable (%s): its containers are unknown and left alone; no replica is placed there", n.name(), n.reason))
		}
	}
	p.removedNodeWarnings()
	slices.SortFunc(p.plan.Services, func(a, b ServicePlan) int { return cmp.Compare(a.Name, b.Name) })
}

// planID hashes what the plan will do and what it was made against: every
// action (with its new container's spec hash), the recovery, the image work
// and each node's fingerprint.
func planID(pl *Plan) string {
	h := sha256.New()
	// One buffer for every line: h.Write([]byte(s)) would copy each part.
	var buf []byte
	w := func(parts ...string) {
		buf = buf[:0]
		for _, s := range parts {
			buf = append(append(buf, s...), 0)
		}
		h.Write(append(buf, '\n'))
	}
	w(pl.FormatVersion, pl.Project)
	var sb []byte
	act := func(a *Action) {
		old, spec := "", ""
		if a.Old != nil {
			old = a.Old.ID
		}
		if a.Spec != nil {
			sb = append(strconv.AppendInt(append(append(sb[:0], a.Spec.Labels[LabelHash]...), '/'), a.Spec.NanoCPUs, 10), '/')
			sb = append(strconv.AppendInt(sb, a.Spec.MemoryBytes, 10), '/')
			sb = append(append(append(sb, a.Spec.Restart...), '/'), a.Spec.Labels[LabelReplicas]...)
			spec = string(sb)
		}
		w(string(a.Kind), a.Order, a.Service, strconv.Itoa(a.Replica), a.Node, a.Container, old, spec, strconv.Itoa(a.Batch))
		if r := a.Network; r != nil {
			w(append(append([]string{"network", r.Connect}, r.Aliases...), r.Disconnect...)...)
		}
	}
	for i := range pl.Recovery {
		act(&pl.Recovery[i])
	}
	for i := range pl.Actions {
		act(&pl.Actions[i])
	}
	for _, ia := range pl.Images {
		w(append([]string{ia.Kind, ia.Image, ia.ID}, ia.Nodes...)...)
	}
	for _, na := range pl.Networks {
		w("network", string(na.Kind), na.Name, na.Node, na.ID)
	}
	for _, n := range pl.Nodes {
		w(n.Name, n.Fingerprint)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// NormalizeRef gives an image reference the ":latest" tag when it has no tag
// or digest, so "nginx" and "nginx:latest" compare equal; Docker Hub's
// "docker.io/library/" prefix is dropped.
func NormalizeRef(ref string) string {
	for _, pre := range []string{"docker.io/library/", "index.docker.io/library/", "docker.io/"} {
		if len(ref) > len(pre) && ref[:len(pre)] == pre {
			ref = ref[len(pre):]
			break
		}
	}
	// A tag is a ':' after the last '/'; a digest has '@'.
	last := 0
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == '/' {
			last = i
			break
		}
	}
	for i := last; i < len(ref); i++ {
		if ref[i] == ':' || ref[i] == '@' {
			return ref
		}
	}
	return ref + ":latest"
}
