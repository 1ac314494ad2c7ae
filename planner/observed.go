package planner

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Observed is one project's live state indexed once (compose's
// observed_state): its replicas by service and replica index, the
// containers an interrupted apply set aside, the host ports held on each
// node and by whom, and berth's own lock, commit and audit volumes. Every
// reader of a Live (the planner's recovery, placement and reconcile, the
// executor's preflight, lock and audit reading, status) asks this index
// instead of parsing labels itself.
//
// It is a read-only view of the Live it was built from (it points into it)
// and holds no decision: what a plan claims while it places replicas lives
// in the planner's node views. Times and process liveness (a lock's age,
// whether its holder still runs) are left to the executor, which may read
// the clock; the index keeps their label text.
type Observed struct {
	project string
	nodes   []string // every node of the Live, sorted by name
	// replicas by service, each sorted by index, node and container name;
	// containers renamed aside are not among them.
	replicas map[string][]Replica
	aside    []Replica
	holds    map[string][]PortHold
	locks    map[string]LockLabels
	commits  map[string]bool // apply IDs with a commit marker
	audit    []AuditLabels
	live     *Live
}

// Replica is one of the project's containers: a replica of a service, or
// one renamed aside by an apply.
type Replica struct {
	Node    string
	Service string // "" when the service label is missing
	// Index is the replica label; 0 when it is missing or not a positive
	// number (edited outside berth).
	Index     int
	Container *Container
	// AsideApply is the ID of the apply that renamed the container aside and
	// Original its name before that; both are "" for a container under its
	// own name.
	AsideApply, Original string
}

// Running reports whether the replica's container is running.
func (r Replica) Running() bool { return r.Container.Running() }

// Running is berth's one definition of a running container: its process is
// up, or its restart policy is bringing it back up. Either way it holds its
// host ports, CPU and memory, and a rollback restarts it. A paused, created,
// exited or dead container is not running, and neither is a nil one (not
// found).
func (c *Container) Running() bool {
	return c != nil && (c.State == "running" || c.State == "restarting")
}

// PortHold is a host port held on a node, and by whom.
type PortHold struct {
	HostPort
	// Holder names it for people when Service does not: `container x (not
	// managed by berth)`, "a host process", "the ingress proxy". Who
	// names any holder.
	Holder string
	// Service is this project's service holding it, "" for a foreign
	// container or a host process; Replica is the replica's index.
	Service string
	Replica int
}

// Who names the holder for people: Holder, or `service "web" replica 1`.
// (A replica's name is built only when a message needs it.)
func (h PortHold) Who() string {
	if h.Holder == "" && h.Service != "" {
		return replicaHolder(h.Service, h.Replica)
	}
	return h.Holder
}

// LockLabels is a project lock volume as its labels record it. Since is the
// label's RFC 3339 text: the executor parses it and judges staleness.
type LockLabels struct {
	Volume  string
	ApplyID string
	PlanID  string
	Holder  string // user@host
	Host    string // host name of the machine holding it
	PID     int
	Since   string
}

// LabelHost is the host name of the machine that holds a lock; with the pid
// it tells a lock left by a killed run on that machine from a live one.
const LabelHost = "berth.host"

// Labels of an audit volume beyond the lock's.
const (
	LabelEnded   = "berth.ended"
	LabelActions = "berth.actions"
	// LabelNodes is the project's node set when the apply ran: JSON, a
	// list of RecordedNode (see RecordedNodes).
	LabelNodes = "berth.nodes"
)

// ParseLockLabels reads a lock volume's labels.
func ParseLockLabels(volume string, l map[string]string) LockLabels {
	pid, _ := strconv.Atoi(l[LabelPID])
	return LockLabels{Volume: volume, ApplyID: l[LabelApply], PlanID: l[LabelPlan], Holder: l[LabelHolder],
		Host: l[LabelHost], PID: pid, Since: l[LabelSince]}
}

// AuditLabels is an audit volume as its labels record it; Started and Ended
// are the labels' RFC 3339 text.
type AuditLabels struct {
	Node    string
	Volume  string
	ApplyID string
	PlanID  string
	Holder  string
	Started string
	Ended   string
	Result  string
	Actions int
	// Nodes is the node set the apply recorded (nil in records from before
	// berth recorded it, or unreadable).
	Nodes []RecordedNode
	// Revisions are the services' specs the apply left running, from
	// the berth.revision.SERVICE labels (an apply by an older berth, a
	// failed one and a destroy have none).
	Revisions map[string]*Revision
	// RollbackTo is the apply a berth rollback returned to.
	RollbackTo string
}

// RecordedNode is one node of a project's node set as an apply records it:
// enough to reach the node again once its block is gone.
type RecordedNode struct {
	Name         string `json:"name"`
	Address      string `json:"address"`
	Port         int    `json:"port,omitempty"`
	User         string `json:"user,omitempty"`
	IdentityFile string `json:"identity_file,omitempty"` // a path, never a key
	KnownHosts   string `json:"known_hosts,omitempty"`
	DockerSocket string `json:"docker_socket,omitempty"`
}

// NodesLabel is the berth.nodes label's value for a node set (sorted by
// name).
func NodesLabel(nodes []RecordedNode) string {
	l := slices.Clone(nodes)
	slices.SortFunc(l, func(a, b RecordedNode) int { return strings.Compare(a.Name, b.Name) })
	b, _ := json.Marshal(l)
	return string(b)
}

// RecordedNodes reads a berth.nodes label; nil when absent or unreadable.
func RecordedNodes(label string) []RecordedNode {
	if label == "" {
		return nil
	}
	var l []RecordedNode
	if json.Unmarshal([]byte(label), &l) != nil {
		return nil
	}
	return l
}

// LabelRollbackTo marks the audit record of a berth rollback, and the
// containers it created, with the apply whose revisions it restored.
const LabelRollbackTo = "berth.rollback-to"

// LabelRevisionPrefix starts the label of an audit volume that holds one
// service's Revision as JSON: berth.revision.SERVICE.
const LabelRevisionPrefix = "berth.revision."

// ParseAudit reads the project's audit records from a node's volumes, in
// the volumes' order (the executor orders them by time).
func ParseAudit(project, node string, vs []Volume) []AuditLabels {
	var out []AuditLabels
	for _, v := range vs {
		l := v.Labels
		if l[LabelKind] != KindAudit || l[LabelProject] != project {
			continue
		}
		n, _ := strconv.Atoi(l[LabelActions])
		a := AuditLabels{Node: node, Volume: v.Name, ApplyID: l[LabelApply], PlanID: l[LabelPlan],
			Holder: l[LabelHolder], Started: l[LabelSince], Ended: l[LabelEnded], Result: l[LabelResult], Actions: n,
			Nodes: RecordedNodes(l[LabelNodes]), RollbackTo: l[LabelRollbackTo]}
		for k, raw := range l {
			svc, ok := strings.CutPrefix(k, LabelRevisionPrefix)
			if !ok {
				continue
			}
			var rv Revision
			if json.Unmarshal([]byte(raw), &rv) != nil {
				continue // edited by hand: not a revision to return to
			}
			if a.Revisions == nil {
				a.Revisions = map[string]*Revision{}
			}
			a.Revisions[svc] = &rv
		}
		out = append(out, a)
	}
	return out
}

// Observe indexes project's live state. Unreachable nodes contribute
// nothing: their containers are unknown, never "none".
func Observe(project string, live *Live) *Observed {
	o := &Observed{project: project, replicas: map[string][]Replica{}, holds: map[string][]PortHold{},
		locks: map[string]LockLabels{}, commits: map[string]bool{}, live: live}
	if live == nil {
		return o
	}
	o.nodes = slices.Sorted(maps.Keys(live.Nodes))
	for _, name := range o.nodes {
		st := live.Nodes[name]
		if st == nil || !st.Reachable {
			continue
		}
		o.indexContainers(name, st)
		o.indexHolds(name, st)
		o.indexVolumes(name, st)
	}
	for svc, rs := range o.replicas {
		slices.SortFunc(rs, compareReplicas)
		o.replicas[svc] = rs
	}
	slices.SortFunc(o.aside, compareReplicas)
	return o
}

func compareReplicas(a, b Replica) int {
	if a.Index != b.Index {
		return a.Index - b.Index
	}
	if a.Node != b.Node {
		return strings.Compare(a.Node, b.Node)
	}
	return strings.Compare(a.Container.Name, b.Container.Name)
}

func (o *Observed) indexContainers(node string, st *NodeState) {
	for i := range st.Containers {
		c := &st.Containers[i]
		r := Replica{Node: node, Service: c.Labels[LabelService], Container: c}
		if n, err := strconv.Atoi(c.Labels[LabelReplica]); err == nil && n >= 1 {
			r.Index = n
		}
		if orig, applyID, aside := ParseAsideName(c.Name); aside {
			r.Original, r.AsideApply = orig, applyID
			o.aside = append(o.aside, r)
			continue
		}
		o.replicas[r.Service] = append(o.replicas[r.Service], r)
	}
}

// indexHolds records, in this order, the host ports held by containers
// outside the project, by host processes (sockets no container of the node
// publishes) and by the project's own containers (not those set aside,
// which are stopped).
func (o *Observed) indexHolds(node string, st *NodeState) {
	var holds []PortHold
	bound := map[portKey]bool{}
	for i := range st.Containers {
		for _, b := range st.Containers[i].Ports {
			bound[keyOf(b.Host())] = true
		}
	}
	for i := range st.Foreign {
		c := &st.Foreign[i]
		who := "container " + c.Name
		if proj := c.Labels[LabelProject]; proj != "" {
			who += " of berth project " + strconv.Quote(proj)
		} else {
			who += " (not managed by berth)"
		}
		for _, b := range c.Ports {
			bound[keyOf(b.Host())] = true
			holds = append(holds, PortHold{HostPort: b.Host(), Holder: who})
		}
	}
	// The project's proxy serves its routes' ports itself (host network).
	if st.Ingress != nil {
		for _, r := range st.Ingress.Routes {
			hp := HostPort{Protocol: "tcp", Port: r.Port}
			if !bound[keyOf(hp)] {
				bound[keyOf(hp)] = true
				holds = append(holds, PortHold{HostPort: hp, Holder: "the ingress proxy", Service: IngressEdgeService})
			}
		}
	}
	for _, hp := range st.HostPorts {
		if !bound[keyOf(hp)] {
			holds = append(holds, PortHold{HostPort: hp, Holder: "a host process"})
		}
	}
	for i := range st.Containers {
		c := &st.Containers[i]
		if _, _, aside := ParseAsideName(c.Name); aside {
			continue
		}
		svc := c.Labels[LabelService]
		r, err := strconv.Atoi(c.Labels[LabelReplica])
		if err != nil || r < 1 {
			r = 0
		}
		for _, b := range c.Ports {
			holds = append(holds, PortHold{HostPort: b.Host(), Service: svc, Replica: r})
		}
	}
	o.holds[node] = holds
}

func replicaHolder(service string, replica int) string {
	return "service " + strconv.Quote(service) + " replica " + strconv.Itoa(replica)
}

func (o *Observed) indexVolumes(node string, st *NodeState) {
	plans := map[string]string{} // apply ID -> plan ID
	for _, v := range st.Volumes {
		l := v.Labels
		switch l[LabelKind] {
		case KindCommit:
			o.commits[l[LabelApply]] = true
		case KindLock:
			if l[LabelProject] == o.project && !strings.Contains(v.Name, "-takeover-") {
				o.locks[node] = ParseLockLabels(v.Name, l)
			}
		case KindLockPlan:
			if l[LabelProject] == o.project {
				plans[l[LabelApply]] = l[LabelPlan]
			}
		}
	}
	// The plan recorded once the lock was held names the lock's plan.
	if l, ok := o.locks[node]; ok && plans[l.ApplyID] != "" {
		l.PlanID = plans[l.ApplyID]
		o.locks[node] = l
	}
	o.audit = append(o.audit, ParseAudit(o.project, node, st.Volumes)...)
}

// Nodes lists the nodes of the Live, reachable or not, sorted.
func (o *Observed) Nodes() []string { return slices.Clone(o.nodes) }

// Services lists the services with a container, under its own name or set
// aside, sorted; "" stands for containers with the project label but no
// service label.
func (o *Observed) Services() []string {
	out := slices.Collect(maps.Keys(o.replicas))
	for _, r := range o.aside {
		out = append(out, r.Service)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Replicas returns the service's containers under their own names, sorted
// by replica index, node and name. The slice is the index's: do not modify.
func (o *Observed) Replicas(service string) []Replica { return o.replicas[service] }

// ByIndex groups the service's replicas by replica index.
func (o *Observed) ByIndex(service string) map[int][]Replica {
	out := map[int][]Replica{}
	for _, r := range o.replicas[service] {
		out[r.Index] = append(out[r.Index], r)
	}
	return out
}

// Aside returns the containers renamed aside by an apply, sorted like
// Replicas.
func (o *Observed) Aside() []Replica { return o.aside }

// Rows returns every container of the service, its replicas and those set
// aside, sorted by replica index, node and name: what status shows.
func (o *Observed) Rows(service string) []Replica {
	out := slices.Clone(o.replicas[service])
	for _, r := range o.aside {
		if r.Service == service {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, compareReplicas)
	return out
}

// Container returns the project's container with this ID on node, or nil.
func (o *Observed) Container(node, id string) *Container {
	st := o.live.Node(node)
	if st == nil || !st.Reachable {
		return nil
	}
	for i := range st.Containers {
		if st.Containers[i].ID == id {
			return &st.Containers[i]
		}
	}
	return nil
}

// Holds returns the host ports held on node: by foreign containers, by host
// processes, then by the project's replicas.
func (o *Observed) Holds(node string) []PortHold { return o.holds[node] }

// Locks returns the project's lock volumes by node.
func (o *Observed) Locks() map[string]LockLabels { return o.locks }

// Committing reports whether an apply left a commit marker: it had
// succeeded and was removing the containers it replaced.
func (o *Observed) Committing(applyID string) bool { return o.commits[applyID] }

// Audit returns the project's audit records of every node, by node name,
// each node's in its volumes' order. An apply is recorded on every node it
// touched, so the same apply ID may appear more than once.
func (o *Observed) Audit() []AuditLabels { return o.audit }
