package planner

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// This file is the ingress (the routing mesh): one proxy container per
// ingress node, planned as replicas of the reserved service IngressService
// so that apply's create, replace, rollback and recovery cover it like any
// replica; a backend host port per replica for each ingress port; and the
// route table every proxy serves, at the start of the apply and at its end.

// IngressService is the service label of the ingress routers, the proxy
// containers that hold the route table; IngressEdgeService that of the edge
// proxies, which listen on the ingress ports and hand every request to the
// router on their node over a unix socket. The router is reloaded at every
// route change; the edge only when the ports, hosts or TLS change, so the
// ports' listening sockets live through every update. The configuration
// refuses both as service names.
const (
	IngressService     = config.IngressServiceName
	IngressEdgeService = config.IngressEdgeServiceName
)

// IsIngressProxy reports whether svc is one of berth's ingress proxy
// services.
func IsIngressProxy(svc string) bool { return svc == IngressService || svc == IngressEdgeService }

// IngressContainerName is the router's container name on every ingress
// node, IngressEdgeContainerName the edge's.
func IngressContainerName(project string) string { return project + "-ingress" }

// IngressEdgeContainerName is the edge proxy's container name.
func IngressEdgeContainerName(project string) string { return project + "-ingress-edge" }

// IngressEdgeAdminSocket is the path of the edge's admin API socket.
func IngressEdgeAdminSocket(project string) string { return IngressDir(project) + "/edge.sock" }

// IngressDir is the host directory, bind-mounted into the proxy at the same
// path, that holds the proxy's admin socket.
func IngressDir(project string) string { return "/run/berth/" + project + "/ingress" }

// IngressAdminSocket is the path of the proxy's admin API socket on its node.
func IngressAdminSocket(project string) string { return IngressDir(project) + "/admin.sock" }

// RouteKey identifies a route: the published port, then host and path.
type RouteKey struct {
	Port int    `json:"port"`
	Host string `json:"host,omitempty"`
	Path string `json:"path,omitempty"`
}

// Route is one ingress route, the shape of executor/proxy's Route.
type Route struct {
	Service   string   `json:"service"`
	Port      int      `json:"port"`
	Host      string   `json:"host,omitempty"`
	Path      string   `json:"path,omitempty"`
	Upstreams []string `json:"upstreams"` // "ip:port", sorted
}

// Key is the route's key.
func (r Route) Key() RouteKey { return RouteKey{Port: r.Port, Host: r.Host, Path: r.Path} }

// String names the route for people: "web :18080", "api :80 api.example.com/v1".
func (r Route) String() string {
	s := r.Service + " :" + strconv.Itoa(r.Port)
	if r.Host != "" || r.Path != "" {
		s += " " + r.Host + r.Path
	}
	return s
}

// Upstream is one container's place in one route.
type Upstream struct {
	Port    int    `json:"port"`
	Host    string `json:"host,omitempty"`
	Path    string `json:"path,omitempty"`
	Address string `json:"address"`
}

// Key is the route the upstream belongs to.
func (u Upstream) Key() RouteKey { return RouteKey{Port: u.Port, Host: u.Host, Path: u.Path} }

// IngressState is what gather read from a node's proxy.
type IngressState struct {
	// Loaded is true when the proxy holds a configuration berth loaded.
	Loaded bool    `json:"loaded"`
	TLS    string  `json:"tls,omitempty"`
	Routes []Route `json:"routes,omitempty"`
	// Upstreams are the proxy's view of each upstream (status shows it;
	// plans ignore it).
	Upstreams []UpstreamLoad `json:"upstreams,omitempty"`
	// Error says why the proxy could not be read (it then counts as
	// holding no routes, so apply pushes its table).
	Error string `json:"error,omitempty"`
}

// UpstreamLoad is one upstream as a proxy reports it: requests in flight
// and failures its passive health check counts.
type UpstreamLoad struct {
	Address  string `json:"address"`
	Requests int    `json:"requests"`
	Fails    int    `json:"fails"`
}

// IngressPlan is the ingress part of a plan.
type IngressPlan struct {
	Image string `json:"image"`
	TLS   string `json:"tls"`
	// Start is the table of the replicas running when the plan was made:
	// apply pushes it first, and a rollback pushes it again.
	Start []Route `json:"start"`
	// Routes is the table once the plan is applied (commit pushes it).
	Routes []Route `json:"routes"`
	// Nodes are the ingress nodes, each with what its proxy serves now.
	Nodes []IngressNode `json:"nodes"`
}

// IngressNode is one ingress node's routes, live and to be.
type IngressNode struct {
	Node string `json:"node"`
	// Live is the table the node's proxy serves (none when it has no
	// proxy yet, or holds no configuration of berth's).
	Live   []Route `json:"live,omitempty"`
	Loaded bool    `json:"loaded"`
	// Add and Remove count the upstreams the apply adds and removes, over
	// every route; Changed is set when the table differs at all.
	Add     int  `json:"add"`
	Remove  int  `json:"remove"`
	Changed bool `json:"changed"`
}

// Changed reports whether any ingress node's routes change.
func (ip *IngressPlan) Changed() bool {
	if ip == nil {
		return false
	}
	for _, n := range ip.Nodes {
		if n.Changed {
			return true
		}
	}
	return false
}

// DiffRoutes counts the upstreams added and removed from old to new, over
// every route (a route's key decides which routes are the same).
func DiffRoutes(old, new []Route) (add, remove int) {
	o := map[RouteKey]map[string]bool{}
	for _, r := range old {
		o[r.Key()] = setOf(r.Upstreams)
	}
	seen := map[RouteKey]bool{}
	for _, r := range new {
		seen[r.Key()] = true
		set := o[r.Key()]
		for _, u := range r.Upstreams {
			if !set[u] {
				add++
			}
		}
		ns := setOf(r.Upstreams)
		for u := range set {
			if !ns[u] {
				remove++
			}
		}
	}
	for _, r := range old {
		if !seen[r.Key()] {
			remove += len(r.Upstreams)
		}
	}
	return add, remove
}

// SameRoutes reports whether two tables are equal (both sorted).
func SameRoutes(a, b []Route) bool {
	return slices.EqualFunc(a, b, func(x, y Route) bool {
		return x.Service == y.Service && x.Key() == y.Key() && slices.Equal(x.Upstreams, y.Upstreams)
	})
}

// SortRoutes sorts a table by port, host, path, service, and each route's
// upstreams.
func SortRoutes(t []Route) {
	for i := range t {
		slices.Sort(t[i].Upstreams)
		t[i].Upstreams = slices.Compact(t[i].Upstreams)
		if t[i].Upstreams == nil {
			t[i].Upstreams = []string{}
		}
	}
	slices.SortFunc(t, func(a, b Route) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), strings.Compare(a.Host, b.Host), strings.Compare(a.Path, b.Path), strings.Compare(a.Service, b.Service))
	})
}

// ingressState is the planner's ingress work in progress.
type ingressState struct {
	nodes []*nodeView // ingress nodes, by name
	// final upstreams by route, collected as replicas are reconciled.
	final map[RouteKey][]string
	// start is the start table.
	start []Route
	// taken holds the host ports that are not free for a backend, by node.
	taken map[string]map[int]bool
}

// privateAddress is the address other nodes reach n on: the backends bind it.
func privateAddress(n *nodeView) string {
	if n.cfg.PrivateAddress != "" {
		return n.cfg.PrivateAddress
	}
	if n.cfg.IsLocal() {
		return "127.0.0.1"
	}
	return n.cfg.Address
}

// ingressPorts are the published ports of every ingress port, sorted.
func (p *planState) ingressPorts() []int {
	set := map[int]bool{}
	for _, s := range p.cfg.Services {
		for _, pt := range s.Ports {
			if pt.Ingress() {
				set[pt.Published] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// planIngress chooses the ingress nodes and plans their proxies (in the
// plan's first batch, before any replica), and reserves the ingress ports
// on them.
func (p *planState) planIngress() hcl.Diagnostics {
	p.ing = &ingressState{final: map[RouteKey][]string{}, taken: map[string]map[int]bool{}}
	in := p.cfg.IngressOf()
	want := p.cfg.HasIngress()
	var diags hcl.Diagnostics
	var memo *exprMemo
	if in.Nodes != nil {
		memo = newExprMemo(in.Nodes)
	}
	eligible := map[string]bool{}
	for _, n := range p.nodes {
		if !want || !n.reachable {
			continue
		}
		if memo != nil {
			v, d := memo.value(n)
			if d.HasErrors() || v.IsNull() || !v.IsKnown() || !v.Type().Equals(cty.Bool) || v.False() {
				continue
			}
		}
		eligible[n.name()] = true
		p.ing.nodes = append(p.ing.nodes, n)
	}
	ports := p.ingressPorts()
	for _, n := range p.ing.nodes {
		// A running proxy of the project may serve the port without its
		// table having been read: then the socket is its own.
		ownProxy := slices.ContainsFunc(p.own[IngressEdgeService], func(oc ownContainer) bool { return oc.node == n && oc.c.Running() }) ||
			slices.ContainsFunc(p.own[IngressService], func(oc ownContainer) bool { return oc.node == n && oc.c.Running() })
		for _, port := range ports {
			hp := HostPort{Protocol: "tcp", Port: port}
			for _, h := range n.ports {
				if h.Service == "" && h.Overlaps(hp) && !(ownProxy && h.Holder == "a host process") {
					r := in.DeclRange
					if r == (hcl.Range{}) {
						r = p.cfg.Project.DeclRange
					}
					d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Ingress port %d is taken on node %s", port, n.name()),
						Detail: fmt.Sprintf("The ingress proxy serves port %d on every ingress node, but on %s it is held by %s. Free it, or leave %s out of the ingress nodes (ingress { nodes = ... }).", port, n.name(), h.Who(), n.name())}
					if r != (hcl.Range{}) {
						d.Subject = &r
					}
					diags = append(diags, d)
					break
				}
			}
			n.ports = append(n.ports, PortHold{HostPort: hp, Holder: "the ingress proxy", Service: IngressEdgeService})
		}
	}
	if diags.HasErrors() {
		return diags
	}

	var batch []Action
	for _, svc := range []string{IngressService, IngressEdgeService} {
		batch = append(batch, p.planProxies(in, svc, want, eligible, ports)...)
	}
	p.addFirst(batch)
	return nil
}

// planProxies plans one kind of proxy (svc: the router or the edge) on
// every ingress node, and deletes the others.
func (p *planState) planProxies(in config.Ingress, svc string, want bool, eligible map[string]bool, ports []int) []Action {
	d := p.proxyDesired(in, svc)
	var batch []Action
	kept := map[*Container]bool{}
	for _, n := range p.ing.nodes {
		var mine []ownContainer
		for _, oc := range p.own[svc] {
			if oc.node == n {
				mine = append(mine, oc)
			}
		}
		replica := slices.IndexFunc(p.cfg.Nodes, func(c *config.Node) bool { return c.Name == n.name() }) + 1
		name := IngressContainerName(p.project)
		reason := fmt.Sprintf("ingress proxy: routes port %s on %s", portList(ports), n.name())
		order := fmt.Sprintf("the router's sockets on %s are its own, so the old one must stop first (the edge holds requests meanwhile)", n.name())
		if svc == IngressEdgeService {
			name = IngressEdgeContainerName(p.project)
			reason = fmt.Sprintf("ingress proxy: listens on port %s on %s", portList(ports), n.name())
			order = fmt.Sprintf("the edge binds port %s on %s itself (host network), so the old one must stop first", portList(ports), n.name())
		}
		spec := d.replicaSpec(p.project, n.name(), replica)
		spec.Name = name
		spec.Aliases = nil
		spec.Labels[LabelReplicas] = "0" // one per ingress node, no count
		if len(mine) == 0 {
			batch = append(batch, Action{Kind: Create, Service: svc, Replica: replica, Node: n.name(), Container: name, Spec: spec, Reason: reason})
			continue
		}
		oc := preferRunning(mine)[0]
		kept[oc.c] = true
		a, ok := p.diffReplica(d, &oc, &d.template, name, n)
		if !ok {
			p.plan.unchanged(svc)
			continue
		}
		a.Replica = replica
		a.Spec = spec
		if a.Kind == Replace && oc.c.Running() {
			a.Order = StopFirst
			a.OrderReason = order
		}
		batch = append(batch, a)
	}
	for _, oc := range p.own[svc] {
		if kept[oc.c] {
			continue
		}
		reason := "no service has an ingress port"
		switch {
		case want && eligible[oc.node.name()]:
			reason = "duplicate ingress proxy on " + oc.node.name()
		case want:
			reason = oc.node.name() + " is not an ingress node (ingress { nodes = ... })"
		}
		batch = append(batch, p.deleteAction(oc, reason))
	}
	return batch
}

func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

// proxyDesired is a proxy container (svc: the router or the edge) as a
// service: Caddy with its admin API on a unix socket in a host directory
// (shared by both: it also holds the router's per-port sockets), its
// configuration and data on a named volume (so a restart keeps the last
// routes, and the edge its certificates), on the host network.
func (p *planState) proxyDesired(in config.Ingress, name string) *serviceDesired {
	dir := IngressDir(p.project)
	admin, volume := IngressAdminSocket(p.project), p.project+"-ingress"
	if name == IngressEdgeService {
		admin, volume = IngressEdgeAdminSocket(p.project), p.project+"-ingress-edge"
	}
	svc := &config.Service{
		Name:            name,
		Image:           in.Image,
		Replicas:        len(p.ing.nodes),
		Command:         []string{"caddy", "run", "--resume"},
		Restart:         config.DefaultRestart,
		StopGracePeriod: config.DefaultStopGracePeriod,
		Env: map[string]config.EnvVar{
			"CADDY_ADMIN":     {Value: "unix/" + admin},
			"XDG_CONFIG_HOME": {Value: "/data/config"},
			"XDG_DATA_HOME":   {Value: "/data"},
		},
		Labels:  map[string]string{},
		Volumes: []config.Volume{{Source: volume, Target: "/data"}, {Source: dir, Target: dir}},
		Update: config.Update{Parallelism: 0, Order: StopFirst, FailureAction: config.DefaultFailureAction,
			Monitor: config.DefaultHealthInterval},
	}
	d := resolveService(p.project, svc, in.Image, nil)
	// Host network: it serves the ingress ports on the node itself, and
	// joins no project network.
	d.template.NetworkMode = "host"
	d.template.Network = ""
	return d
}

// backend returns the upstream address of container c for an ingress port
// with the given target on node n, or "".
func backendOf(c *Container, target int, n *nodeView) string {
	addr := privateAddress(n)
	for _, b := range c.Ports {
		if b.ContainerPort == target && b.Protocol == "tcp" && b.HostIP == addr && b.HostPort > 0 {
			return addr + ":" + strconv.Itoa(b.HostPort)
		}
	}
	return ""
}

// takenOn is the set of host ports a new backend cannot take on n: every
// port held there (live), every host port a service publishes, the ingress
// ports, and the backends this plan assigned already.
func (p *planState) takenOn(n *nodeView) map[int]bool {
	if t := p.ing.taken[n.name()]; t != nil {
		return t
	}
	t := map[int]bool{}
	for _, h := range p.obs.Holds(n.name()) {
		t[h.Port] = true
	}
	if n.state != nil {
		for _, h := range n.state.HostPorts {
			t[h.Port] = true
		}
	}
	for _, ports := range p.resolvedPorts {
		for _, pt := range ports {
			if !pt.Ingress() {
				t[pt.Published] = true
			}
		}
	}
	for _, port := range p.ingressPorts() {
		t[port] = true
	}
	p.ing.taken[n.name()] = t
	return t
}

// withBackends gives spec's ingress ports their backend on n: those of
// keep (a container kept in place), else the first free port of the auto
// range from the project's starting point (backendStart), wrapping. It
// records the replica's upstreams in the final table.
func (p *planState) withBackends(spec *ContainerSpec, n *nodeView, keep *Container) {
	if !slices.ContainsFunc(spec.Ports, PortSpec.Ingress) {
		return
	}
	spec.Ports = slices.Clone(spec.Ports)
	addr := privateAddress(n)
	for i := range spec.Ports {
		pt := &spec.Ports[i]
		if !pt.Ingress() {
			continue
		}
		pt.HostIP = addr
		if keep != nil {
			if b := backendOf(keep, pt.Target, n); b != "" {
				pt.Backend, _ = strconv.Atoi(b[strings.LastIndexByte(b, ':')+1:])
			}
		}
		if pt.Backend == 0 {
			t := p.takenOn(n)
			span := config.AutoPortMax - config.AutoPortMin + 1
			first := backendStart(p.project)
			for i := 0; i < span; i++ {
				c := config.AutoPortMin + (first+i)%span
				if !t[c] {
					pt.Backend = c
					t[c] = true
					break
				}
			}
		}
	}
}

// backendStart is where a project's search for a free backend port starts,
// as an offset into the auto range: derived from the project's name, so
// that two projects sharing a node, planned and applied at the same time
// (each under its own lock), seldom pick the same free port and collide at
// start. Deterministic: the same project always starts at the same port.
func backendStart(project string) int {
	h := fnv.New32a()
	h.Write([]byte(project))
	return int(h.Sum32() % uint32(config.AutoPortMax-config.AutoPortMin+1))
}

// upstreamsOf lists the upstreams a spec's container serves.
func upstreamsOf(spec *ContainerSpec) []Upstream {
	var out []Upstream
	for _, pt := range spec.Ports {
		if pt.Ingress() && pt.Backend != 0 {
			out = append(out, Upstream{Port: pt.Published, Host: pt.HostName, Path: pt.Path,
				Address: pt.HostIP + ":" + strconv.Itoa(pt.Backend)})
		}
	}
	return out
}

// keptUpstreams records, in the final table, the upstreams of a replica
// whose container stays as it is.
func (p *planState) keptUpstreams(d *serviceDesired, c *Container, n *nodeView) {
	for _, pt := range d.ports {
		if !pt.Ingress() {
			continue
		}
		if b := backendOf(c, pt.Target, n); b != "" {
			k := RouteKey{Port: pt.Published, Host: pt.HostName, Path: pt.Path}
			p.ing.final[k] = append(p.ing.final[k], b)
		}
	}
}

// newUpstreams records a new container's upstreams in the final table.
func (p *planState) newUpstreams(spec *ContainerSpec) {
	for _, u := range upstreamsOf(spec) {
		p.ing.final[u.Key()] = append(p.ing.final[u.Key()], u.Address)
	}
}

// desiredRoutes are the configured routes, with no upstreams.
func (p *planState) desiredRoutes() []Route {
	var out []Route
	for _, s := range p.cfg.Services {
		for _, pt := range p.resolvedPorts[s.Name] {
			if pt.Ingress() {
				out = append(out, Route{Service: s.Name, Port: pt.Published, Host: pt.HostName, Path: pt.Path})
			}
		}
	}
	return out
}

// startTable is the table of the replicas running now (after recovery):
// every configured route with the running replicas' backends, and every
// route a proxy serves that is no longer configured, with those of its
// upstreams that still run.
func (p *planState) startTable(live *Live) []Route {
	running := map[string]bool{}
	var table []Route
	seen := map[RouteKey]bool{}
	for _, svc := range slices.Sorted(maps.Keys(p.own)) {
		for _, oc := range p.own[svc] {
			if !oc.c.Running() {
				continue
			}
			for _, b := range oc.c.Ports {
				if b.HostIP != "" {
					running[b.HostIP+":"+strconv.Itoa(b.HostPort)] = true
				}
			}
		}
	}
	if !p.opts.Destroy {
		for _, s := range p.cfg.Services {
			for _, pt := range s.Ports {
				if !pt.Ingress() {
					continue
				}
				r := Route{Service: s.Name, Port: pt.Published, Host: pt.HostName, Path: pt.Path}
				for _, oc := range p.own[s.Name] {
					if oc.c.Running() {
						if b := backendOf(oc.c, pt.Target, oc.node); b != "" {
							r.Upstreams = append(r.Upstreams, b)
						}
					}
				}
				seen[r.Key()] = true
				table = append(table, r)
			}
		}
	}
	for _, n := range p.nodes {
		st := live.Node(n.name())
		if st == nil || st.Ingress == nil {
			continue
		}
		for _, lr := range st.Ingress.Routes {
			if seen[lr.Key()] {
				continue
			}
			seen[lr.Key()] = true
			r := Route{Service: lr.Service, Port: lr.Port, Host: lr.Host, Path: lr.Path}
			for _, u := range lr.Upstreams {
				if running[u] {
					r.Upstreams = append(r.Upstreams, u)
				}
			}
			table = append(table, r)
		}
	}
	SortRoutes(table)
	return table
}

// finishIngress fills the plan's ingress part: the start and final
// tables, each ingress node's live table, and each action's upstreams.
func (p *planState) finishIngress(live *Live) {
	if len(p.ing.nodes) == 0 {
		return
	}
	in := p.cfg.IngressOf()
	ip := &IngressPlan{Image: in.Image, TLS: in.TLS, Start: p.ing.start}
	for _, r := range p.desiredRoutes() {
		r.Upstreams = p.ing.final[r.Key()]
		ip.Routes = append(ip.Routes, r)
	}
	SortRoutes(ip.Routes)
	for _, n := range p.ing.nodes {
		in := IngressNode{Node: n.name()}
		if st := live.Node(n.name()); st != nil && st.Ingress != nil && st.Ingress.Loaded {
			in.Loaded = true
			in.Live = slices.Clone(st.Ingress.Routes)
			SortRoutes(in.Live)
			in.Changed = st.Ingress.TLS != ip.TLS
		}
		in.Add, in.Remove = DiffRoutes(in.Live, ip.Routes)
		in.Changed = in.Changed || !in.Loaded || !SameRoutes(in.Live, ip.Routes)
		ip.Nodes = append(ip.Nodes, in)
	}
	p.plan.Ingress = ip
	// Each action's upstreams: the new container's, and the old one's in
	// the start table.
	startOf := map[string][]Upstream{}
	for _, r := range ip.Start {
		for _, u := range r.Upstreams {
			startOf[u] = append(startOf[u], Upstream{Port: r.Port, Host: r.Host, Path: r.Path, Address: u})
		}
	}
	for i := range p.plan.Actions {
		a := &p.plan.Actions[i]
		if a.Spec != nil && (a.Kind == Create || a.Kind == Replace) {
			a.Upstreams = upstreamsOf(a.Spec)
		}
		if a.Old != nil && (a.Kind == Replace || a.Kind == Delete) {
			if c := p.obs.Container(a.Old.Node, a.Old.ID); c != nil {
				for _, b := range c.Ports {
					a.OldUpstreams = append(a.OldUpstreams, startOf[b.HostIP+":"+strconv.Itoa(b.HostPort)]...)
				}
			}
		}
	}
}
