package swarmplan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/swarm"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// Live is what the executor read through a Swarm manager.
type Live struct {
	// Manager is the node the state was read through.
	Manager string
	// Errors are the managers tried before it, and why they failed.
	Errors []string
	Nodes  []swarm.Node
	// Services are the project's services (label berth.project).
	Services []swarm.Service
	// Tasks are the tasks of those services.
	Tasks []swarm.Task
	// NetworkID is the project's overlay network's ID; "" when it does
	// not exist. Networks maps every network ID to its name.
	NetworkID string
	Networks  map[string]string
	// Images holds, per configured image reference, what the manager's
	// engine knows of it.
	Images map[string]Image
}

// Image is what the manager's engine holds of an image reference.
type Image struct {
	Found       bool
	ID          string
	RepoDigests []string
}

// Options tune a plan.
type Options struct {
	// Destroy plans the removal of every service of the project.
	Destroy bool
}

// Make plans cfg against live: node labels, the network, and one action per
// Swarm service that changes.
func Make(cfg *config.Config, live *Live, opts Options) (*planner.Plan, hcl.Diagnostics) {
	project := cfg.Project.Name
	var diags hcl.Diagnostics
	p := &planner.Plan{
		FormatVersion: planner.FormatVersion,
		Project:       project,
		Destroy:       opts.Destroy,
		Actions:       []planner.Action{},
		Nodes:         []planner.NodeSnapshot{{Name: live.Manager, Reachable: true}},
	}
	sp := &planner.SwarmPlan{
		Manager: live.Manager,
		Network: planner.SwarmNetwork{Name: NetworkName(project), ID: live.NetworkID, EndpointMode: string(EndpointMode), Create: live.NetworkID == "" && !opts.Destroy, Remove: live.NetworkID != "" && opts.Destroy},
	}
	p.Swarm = sp
	for _, e := range live.Errors {
		p.Warnings = append(p.Warnings, "swarm manager "+e+": berth used "+live.Manager+" instead")
	}
	netName := func(id string) string {
		if n, ok := live.Networks[id]; ok {
			return n
		}
		return id
	}

	byName := map[string]*swarm.Service{}
	for i := range live.Services {
		s := &live.Services[i]
		if s.Spec.Labels[LabelProject] == project {
			byName[s.Spec.Labels[LabelService]] = s
		}
	}

	services := cfg.Services
	if opts.Destroy {
		services = nil
	}
	// Node labels: evaluated per Swarm node.
	labels, ldiags := nodeLabels(cfg, live, services)
	diags = append(diags, ldiags...)
	sp.NodeLabels = labels

	secretsWarned := false
	for _, svc := range order(services) {
		img := live.Images[svc.Image]
		pin := svc.Image
		switch {
		case !img.Found:
			p.Warnings = append(p.Warnings, fmt.Sprintf("service %q: image %s is not on manager %s, so it is not pinned: every node resolves the tag itself", svc.Name, svc.Image, live.Manager))
		case digestOf(svc.Image, img.RepoDigests) != "":
			pin = digestOf(svc.Image, img.RepoDigests)
		default:
			pin = img.ID
			p.Warnings = append(p.Warnings, fmt.Sprintf("service %q: image %s has no registry digest (built or loaded locally), so it is pinned by its image ID %s: every node must hold that image", svc.Name, svc.Image, planner.ShortID(img.ID)))
		}
		spec := Spec(project, svc, pin)
		if _, why := updateOrder(svc); why != "" {
			p.Warnings = append(p.Warnings, why)
		}
		sensitive := map[string]bool{}
		var secrets []planner.SwarmSecret
		for _, k := range slices.Sorted(maps.Keys(svc.Env)) {
			if e := svc.Env[k]; e.Sensitive {
				sensitive[k] = true
				secrets = append(secrets, planner.SwarmSecret{Name: k, Hash: planner.SecretHash(project, svc.Name, k, e.Value)})
			}
		}
		if len(secrets) > 0 && !secretsWarned {
			secretsWarned = true
			p.Warnings = append(p.Warnings, "sensitive env is stored in clear text in the Swarm service spec on the managers (anyone with access to a manager's Docker API can read it with docker service inspect); use Docker secrets for real secrets")
		}
		hash := func(k, v string) string { return planner.SecretHash(project, svc.Name, k, v) }
		want := fields(&spec, sensitive, netName, hash)
		ss := planner.SwarmService{
			Service: svc.Name, Name: spec.Name, Spec: redactedSpec(spec, sensitive), Secrets: secrets,
			Image: svc.Image, ImagePin: pin, MonitorNanos: int64(monitorOf(svc)), Replicas: svc.Replicas,
		}
		a := planner.Action{Service: svc.Name, Node: "swarm", Container: spec.Name, Ports: svc.Ports}
		if a.Ports == nil {
			a.Ports = []planner.PortSpec{}
		}
		p.Services = append(p.Services, planner.ServicePlan{Name: svc.Name, Image: svc.Image, Replicas: svc.Replicas,
			DependsOn: sortedCopy(svc.DependsOn), Placement: map[string]string{}, Ports: svc.Ports})
		if old := byName[svc.Name]; old != nil {
			ss.ID, ss.Version = old.ID, old.Version.Index
			have := fields(&old.Spec, sensitive, netName, hash)
			if ch := diff(want, have); len(ch) > 0 {
				ss.Kind = planner.Update
				a.Kind, a.Changes = planner.Update, ch
				a.Reason = "changed: " + changedFields(ch)
			} else if why := drift(old, live.Tasks, svc.Replicas, nodeNames(cfg, live)); why != "" {
				ss.Kind = planner.Update
				a.Kind, a.Drift = planner.Update, true
				a.Reason = why + "; fix: restart its tasks (a forced rolling update)"
			}
		} else {
			ss.Kind = planner.Create
			a.Kind = planner.Create
			a.Reason = "no such Swarm service"
			for _, f := range want {
				if f.value != "" && (f.name == "image" || f.name == "replicas" || f.name == "ports" || f.name == "placement.constraints" || f.name == "placement.preferences") {
					a.Changes = append(a.Changes, planner.FieldChange{Field: f.name, Old: "(none)", New: f.value})
				}
			}
		}
		sp.Services = append(sp.Services, ss)
		if a.Kind != "" {
			p.Actions = append(p.Actions, a)
		}
	}
	// Services of the project no longer configured (all of them for a
	// destroy): deleted last, in name order.
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		if cfg.Service(name) != nil && !opts.Destroy {
			continue
		}
		old := byName[name]
		sp.Services = append(sp.Services, planner.SwarmService{Service: name, Name: old.Spec.Name, Kind: planner.Delete, ID: old.ID, Version: old.Version.Index})
		reason := "not in the configuration"
		if opts.Destroy {
			reason = "destroy"
		}
		p.Actions = append(p.Actions, planner.Action{Kind: planner.Delete, Service: name, Node: "swarm", Container: old.Spec.Name, Reason: reason, Ports: []planner.PortSpec{}})
	}
	for i := range p.Actions {
		p.Actions[i].Step = i + 1
		p.Actions[i].Batch = i + 1
	}
	if !opts.Destroy {
		p.Warnings = append(p.Warnings, fmt.Sprintf("services use endpoint mode %s (DNS round robin) on the overlay network %s: Swarm's virtual IPs and routing mesh need IPVS, which berth does not assume; ports are published in host mode, on the nodes where a task runs", EndpointMode, sp.Network.Name))
	}
	sp.Snapshot = Snapshot(project, live)
	p.Nodes[0].Items = sp.Snapshot
	p.Nodes[0].Fingerprint = hashLines(sp.Snapshot)
	p.ID = planID(p)
	return p, diags
}

// changedFields names the fields of a change list, shortened.
func changedFields(ch []planner.FieldChange) string {
	var names []string
	for _, c := range ch {
		n, _, _ := strings.Cut(c.Field, ".")
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

func sortedCopy(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(l))
}

// digestOf returns the repo digest (name@sha256:...) of ref's repository,
// or "".
func digestOf(ref string, digests []string) string {
	repo := planner.NormalizeRef(ref)
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	for _, d := range digests {
		name, _, _ := strings.Cut(d, "@")
		if planner.NormalizeRef(name+":x") == repo+":x" || name == repo {
			return d
		}
	}
	return ""
}

// redactedSpec is the spec as the plan holds it: the Engine API's JSON,
// with every sensitive env value replaced by the placeholder.
func redactedSpec(spec swarm.ServiceSpec, sensitive map[string]bool) []byte {
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil && len(sensitive) > 0 {
		c := *cs
		c.Env = slices.Clone(cs.Env)
		for i, kv := range c.Env {
			if k, _, _ := strings.Cut(kv, "="); sensitive[k] {
				c.Env[i] = k + "=" + planner.SwarmSecretPlaceholder
			}
		}
		spec.TaskTemplate.ContainerSpec = &c
	}
	b, err := json.Marshal(spec)
	if err != nil {
		panic(err) // a ServiceSpec always marshals
	}
	return b
}

// order returns services with every service after the ones it depends on
// (the configuration has no cycles), ties by name.
func order(services []*config.Service) []*config.Service {
	byName := map[string]*config.Service{}
	for _, s := range services {
		byName[s.Name] = s
	}
	var out []*config.Service
	done := map[string]bool{}
	var visit func(s *config.Service)
	visit = func(s *config.Service) {
		if done[s.Name] {
			return
		}
		done[s.Name] = true
		deps := slices.Clone(s.DependsOn)
		for _, r := range s.Refs {
			deps = append(deps, r.Service)
		}
		slices.Sort(deps)
		for _, d := range deps {
			if ds := byName[d]; ds != nil {
				visit(ds)
			}
		}
		out = append(out, s)
	}
	for _, s := range services {
		visit(s)
	}
	return out
}

// nodeNames maps Swarm node IDs to berth's node names (else hostnames).
func nodeNames(cfg *config.Config, live *Live) map[string]string {
	out := map[string]string{}
	for _, n := range live.Nodes {
		if cn := configNode(cfg, n); cn != nil {
			out[n.ID] = cn.Name
		} else {
			out[n.ID] = n.Description.Hostname
		}
	}
	return out
}

// configNode is the node block a Swarm node is: the one whose address is
// the node's address, else the one named as the node's hostname.
func configNode(cfg *config.Config, n swarm.Node) *config.Node {
	for _, c := range cfg.Nodes {
		if c.Address == n.Status.Addr {
			return c
		}
	}
	return cfg.Node(n.Description.Hostname)
}

// drift says why the service's tasks are not all running, or "".
func drift(s *swarm.Service, tasks []swarm.Task, replicas int, names map[string]string) string {
	running := 0
	var bad []string
	for _, t := range tasks {
		if t.ServiceID != s.ID || t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		if t.Status.State == swarm.TaskStateRunning {
			running++
			continue
		}
		where := names[t.NodeID]
		if where == "" {
			where = "no node"
		}
		msg := string(t.Status.State)
		if t.Status.Err != "" {
			msg += ": " + t.Status.Err
		}
		bad = append(bad, fmt.Sprintf("task %d on %s %s", t.Slot, where, msg))
	}
	if running >= replicas && len(bad) == 0 {
		return ""
	}
	slices.Sort(bad)
	why := fmt.Sprintf("%d of %d tasks running", running, replicas)
	if len(bad) > 0 {
		why += " (" + strings.Join(bad, "; ") + ")"
	}
	return why
}

// nodeLabels evaluates each service's placement per Swarm node and returns
// the label changes: the constraint label on eligible nodes, the spread
// label with each node's value, and the removal of berth's labels of this
// project that are no longer wanted. A Swarm node that is no node block is
// never eligible (its labels and facts are not berth's to judge).
func nodeLabels(cfg *config.Config, live *Live, services []*config.Service) ([]planner.SwarmNodeLabel, hcl.Diagnostics) {
	project := cfg.Project.Name
	var diags hcl.Diagnostics
	nodes := slices.Clone(live.Nodes)
	slices.SortFunc(nodes, func(a, b swarm.Node) int {
		return strings.Compare(a.Description.Hostname+a.ID, b.Description.Hostname+b.ID)
	})
	names := nodeNames(cfg, live)
	var out []planner.SwarmNodeLabel
	for _, n := range nodes {
		want := map[string]string{}
		cn := configNode(cfg, n)
		if cn != nil {
			info := config.NodeInfo{Name: cn.Name, Address: cn.Address, Labels: cn.Labels,
				CPUs: int(n.Description.Resources.NanoCPUs / 1e9), MemoryBytes: n.Description.Resources.MemoryBytes,
				Arch: goArch(n.Description.Platform.Architecture), OS: n.Description.Platform.OS}
			ctx := config.PlacementContext(config.NodeValue(info))
			for _, svc := range services {
				if c := svc.Placement.Constraint; c != nil {
					v, d := c.Value(ctx)
					if !d.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type() == cty.Bool && v.True() {
						want[ConstraintLabel(project, svc.Name)] = "true"
					}
				}
				if e := svc.Placement.Spread; e != nil {
					v, d := e.Value(ctx)
					if !d.HasErrors() && v.IsKnown() && !v.IsNull() {
						if s, err := convert.Convert(v, cty.String); err == nil {
							want[SpreadLabel(project, svc.Name)] = s.AsString()
						}
					}
				}
			}
		}
		have := n.Spec.Labels
		for _, k := range slices.Sorted(maps.Keys(want)) {
			old, ok := have[k]
			switch {
			case !ok:
				out = append(out, planner.SwarmNodeLabel{Kind: planner.Create, Node: names[n.ID], NodeID: n.ID, Label: k, Value: want[k], Version: n.Version.Index})
			case old != want[k]:
				out = append(out, planner.SwarmNodeLabel{Kind: planner.Update, Node: names[n.ID], NodeID: n.ID, Label: k, Value: want[k], Old: old, Version: n.Version.Index})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(have)) {
			if _, ok := want[k]; !ok && strings.HasPrefix(k, labelPrefix(project)) {
				out = append(out, planner.SwarmNodeLabel{Kind: planner.Delete, Node: names[n.ID], NodeID: n.ID, Label: k, Old: have[k], Version: n.Version.Index})
			}
		}
	}
	return out, diags
}

// goArch spells a Swarm node's architecture (uname's) as berth's own
// engine facts do (Go's, from the engine's version): x86_64 is amd64.
func goArch(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "i386", "i686":
		return "386"
	case "armv7l", "armv6l":
		return "arm"
	}
	return a
}

// Snapshot lists what a plan relies on: each project service's version
// index, each node's availability and state, berth's labels of the
// project on each node, the network. Apply of a saved plan compares it.
func Snapshot(project string, live *Live) []string {
	var items []string
	for _, s := range live.Services {
		if s.Spec.Labels[LabelProject] == project {
			items = append(items, fmt.Sprintf("service %s version %d", s.Spec.Name, s.Version.Index))
		}
	}
	for _, n := range live.Nodes {
		items = append(items, fmt.Sprintf("node %s availability %s", n.Description.Hostname, n.Spec.Availability))
		for _, k := range slices.Sorted(maps.Keys(n.Spec.Labels)) {
			if strings.HasPrefix(k, labelPrefix(project)) {
				items = append(items, fmt.Sprintf("node %s label %s=%s", n.Description.Hostname, k, n.Spec.Labels[k]))
			}
		}
	}
	if live.NetworkID != "" {
		items = append(items, "network "+NetworkName(project)+" "+planner.ShortID(live.NetworkID))
	}
	slices.Sort(items)
	return items
}

// CheckFresh refuses a saved plan when what it relied on changed, naming
// each change.
func CheckFresh(saved *planner.Plan, live *Live) error {
	if saved.Swarm == nil {
		return fmt.Errorf("the saved plan is not for a Swarm project")
	}
	now := Snapshot(saved.Project, live)
	old := map[string]bool{}
	for _, it := range saved.Swarm.Snapshot {
		old[it] = true
	}
	cur := map[string]bool{}
	for _, it := range now {
		cur[it] = true
	}
	nc := planner.NodeChange{Node: "swarm (through manager " + live.Manager + ")"}
	for _, it := range now {
		if !old[it] {
			nc.Added = append(nc.Added, it)
		}
	}
	for _, it := range saved.Swarm.Snapshot {
		if !cur[it] {
			nc.Removed = append(nc.Removed, it)
		}
	}
	if len(nc.Added) == 0 && len(nc.Removed) == 0 {
		return nil
	}
	return &planner.StaleError{Nodes: []planner.NodeChange{nc}}
}

func hashLines(lines []string) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// planID hashes the plan's content (its ID left out).
func planID(p *planner.Plan) string {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// Specs returns the spec each service of p is to be created or updated
// with, by berth service name: the plan's spec with cfg's sensitive env
// values filled in, each checked against the hash the plan recorded. The
// plan itself is left as it is (it may still be saved or shown).
func Specs(p *planner.Plan, cfg *config.Config) (map[string]swarm.ServiceSpec, error) {
	out := map[string]swarm.ServiceSpec{}
	if p.Swarm == nil {
		return out, nil
	}
	for _, ss := range p.Swarm.Services {
		if len(ss.Spec) == 0 {
			continue
		}
		var spec swarm.ServiceSpec
		if err := json.Unmarshal(ss.Spec, &spec); err != nil {
			return nil, fmt.Errorf("service %q: the plan's spec: %w", ss.Service, err)
		}
		if len(ss.Secrets) > 0 {
			svc := cfg.Service(ss.Service)
			if svc == nil {
				return nil, fmt.Errorf("service %q is no longer in the configuration: its sensitive env cannot be supplied", ss.Service)
			}
			vals := map[string]string{}
			for _, sec := range ss.Secrets {
				v, ok := svc.Env[sec.Name]
				if !ok || !v.Sensitive || planner.SecretHash(p.Project, ss.Service, sec.Name, v.Value) != sec.Hash {
					return nil, fmt.Errorf("service %q: sensitive env %s is not set as when the plan was made; pass the same -var, -var-file or BERTH_VAR_ inputs", ss.Service, sec.Name)
				}
				vals[sec.Name] = v.Value
			}
			cs := spec.TaskTemplate.ContainerSpec
			for j, kv := range cs.Env {
				if k, _, _ := strings.Cut(kv, "="); k != "" {
					if v, ok := vals[k]; ok {
						cs.Env[j] = k + "=" + v
					}
				}
			}
		}
		out[ss.Service] = spec
	}
	return out, nil
}
