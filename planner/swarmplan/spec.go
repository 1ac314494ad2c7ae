// Package swarmplan plans a project whose engine is Docker Swarm: it maps
// each berth service to a Swarm service spec, evaluates berth's placement
// expressions per Swarm node into node labels, and diffs the result against
// the live services field by field, comparing only what berth sets.
//
// Like planner, it is pure: no I/O, no clock, no randomness. The executor
// (executor/swarmexec) gathers Live and carries the plan out.
package swarmplan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// Labels berth sets on Swarm services (and their containers).
const (
	LabelProject = planner.LabelProject // berth.project
	LabelService = planner.LabelService // berth.service
	// LabelImage is the image as configured; the spec runs it pinned.
	LabelImage = "berth.image"
	// LabelApply is the apply ID of the run that last created or updated
	// the service: the record a killed run leaves for the next apply's
	// recovery. Never compared (it is the executor's, not the
	// configuration's).
	LabelApply = planner.LabelApply
)

// EndpointMode is the endpoint mode of every service: DNS round robin.
// Swarm's virtual IPs and its ingress routing mesh need IPVS in the kernel,
// which not every host has (the test cluster's has none); DNS round robin
// needs nothing, and ports are then published in host mode.
const EndpointMode = swarm.ResolutionModeDNSRR

// ServiceName is the Swarm service of a berth service: PROJECT-SERVICE.
func ServiceName(project, service string) string { return project + "-" + service }

// NetworkName is the project's overlay network.
func NetworkName(project string) string { return "berth-swarm-" + project }

// ConstraintLabel is the node label berth sets to "true" on every node
// where the service's placement constraint holds.
func ConstraintLabel(project, service string) string {
	return "berth." + project + "." + service
}

// SpreadLabel is the node label that holds each node's value of the
// service's spread expression.
func SpreadLabel(project, service string) string {
	return "berth." + project + "." + service + ".spread"
}

// labelPrefix is the prefix of every node label berth sets for project.
func labelPrefix(project string) string { return "berth." + project + "." }

// restartCondition maps berth's restart policy to Swarm's condition: Swarm
// has no "stopped by hand" state, so always and unless-stopped are both
// "any".
func restartCondition(r string) swarm.RestartPolicyCondition {
	switch r {
	case "no":
		return swarm.RestartPolicyConditionNone
	case "on-failure":
		return swarm.RestartPolicyConditionOnFailure
	}
	return swarm.RestartPolicyConditionAny
}

// hostPortsOrder is the update order of a service: berth's, except that a
// service publishing a host-mode port updates stop-first, as the new task
// cannot bind the port while the old one holds it on that node.
func updateOrder(svc *config.Service) (order, why string) {
	if len(svc.Ports) > 0 && svc.Update.Order == planner.StartFirst {
		return planner.StopFirst, fmt.Sprintf("service %q publishes host-mode ports, which the old task holds on its node until it stops: it updates stop-first, not start-first", svc.Name)
	}
	return svc.Update.Order, ""
}

// Spec maps a berth service to its Swarm service spec. pin is the image to
// run (name@digest or an image ID); constrained and spread say whether the
// placement constraint and spread labels apply.
func Spec(project string, svc *config.Service, pin string) swarm.ServiceSpec {
	name := ServiceName(project, svc.Name)
	labels := map[string]string{LabelProject: project, LabelService: svc.Name, LabelImage: svc.Image}
	ctrLabels := map[string]string{LabelProject: project, LabelService: svc.Name}
	for k, v := range svc.Labels {
		labels[k] = v
		ctrLabels[k] = v
	}
	cs := &swarm.ContainerSpec{
		Image:    pin,
		Labels:   ctrLabels,
		Command:  slices.Clone(svc.Entrypoint),
		Args:     slices.Clone(svc.Command),
		Hostname: svc.Hostname,
		Dir:      svc.WorkingDir,
		User:     svc.User,
	}
	for _, k := range slices.Sorted(maps.Keys(svc.Env)) {
		cs.Env = append(cs.Env, k+"="+svc.Env[k].Value)
	}
	for _, h := range svc.ExtraHosts {
		host, ip, _ := strings.Cut(h, ":")
		cs.Hosts = append(cs.Hosts, ip+" "+host)
	}
	grace := svc.StopGracePeriod
	cs.StopGracePeriod = &grace
	for _, v := range svc.Volumes {
		m := mount.Mount{Type: mount.TypeVolume, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if v.IsBind() {
			m.Type = mount.TypeBind
		}
		cs.Mounts = append(cs.Mounts, m)
	}
	if h := svc.Health; h != nil && len(h.Cmd) > 0 {
		cs.Healthcheck = &container.HealthConfig{
			Test:        append([]string{"CMD"}, h.Cmd...),
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			Retries:     h.Retries,
			StartPeriod: h.StartPeriod,
		}
	}

	tt := swarm.TaskSpec{
		ContainerSpec: cs,
		RestartPolicy: &swarm.RestartPolicy{Condition: restartCondition(svc.Restart)},
		Networks:      []swarm.NetworkAttachmentConfig{{Target: NetworkName(project), Aliases: []string{svc.Name}}},
	}
	if r := svc.Resources; r.NanoCPUs != 0 || r.MemoryBytes != 0 {
		tt.Resources = &swarm.ResourceRequirements{
			Limits:       &swarm.Limit{NanoCPUs: r.NanoCPUs, MemoryBytes: r.MemoryBytes},
			Reservations: &swarm.Resources{NanoCPUs: r.NanoCPUs, MemoryBytes: r.MemoryBytes},
		}
	}
	pl := svc.Placement
	if pl.Constraint != nil || pl.Spread != nil || pl.MaxPerNode > 0 {
		p := &swarm.Placement{MaxReplicas: uint64(pl.MaxPerNode)}
		if pl.Constraint != nil {
			p.Constraints = []string{"node.labels." + ConstraintLabel(project, svc.Name) + "==true"}
		}
		if pl.Spread != nil {
			p.Preferences = []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels." + SpreadLabel(project, svc.Name)}}}
		}
		tt.Placement = p
	}

	replicas := uint64(svc.Replicas)
	order, _ := updateOrder(svc)
	u := svc.Update
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: tt,
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{
			Parallelism:   uint64(u.Parallelism),
			Delay:         u.Delay,
			FailureAction: failureAction(u.FailureAction),
			Monitor:       u.Monitor,
			Order:         order,
		},
		RollbackConfig: &swarm.UpdateConfig{
			Parallelism:   uint64(u.Parallelism),
			Delay:         u.Delay,
			FailureAction: swarm.UpdateFailureActionPause,
			Monitor:       u.Monitor,
			Order:         order,
		},
		EndpointSpec: &swarm.EndpointSpec{Mode: EndpointMode},
	}
	for _, p := range svc.Ports {
		spec.EndpointSpec.Ports = append(spec.EndpointSpec.Ports, swarm.PortConfig{
			Protocol:      swarm.PortConfigProtocol(p.Protocol),
			TargetPort:    uint32(p.Target),
			PublishedPort: uint32(p.Published),
			PublishMode:   swarm.PortConfigPublishModeHost,
		})
	}
	return spec
}

func failureAction(a string) string {
	if a == "pause" {
		return swarm.UpdateFailureActionPause
	}
	return swarm.UpdateFailureActionRollback
}

// field is one compared field of a spec, as shown in a plan.
type field struct {
	name      string
	value     string
	sensitive bool
}

// fields projects a spec onto what berth sets, in a fixed order, as text.
// Fields Swarm fills in with its defaults (restart delay, isolation,
// update max failure ratio, ...) are not part of it, so they never show as
// a difference. netName maps a network ID to its name (live specs hold the
// ID); hash hashes a sensitive env value.
func fields(spec *swarm.ServiceSpec, sensitive map[string]bool, netName func(string) string, hash func(k, v string) string) []field {
	var out []field
	add := func(name, value string) { out = append(out, field{name: name, value: value}) }
	cs := spec.TaskTemplate.ContainerSpec
	if cs == nil {
		cs = &swarm.ContainerSpec{}
	}
	add("image", imageText(spec.Labels[LabelImage], cs.Image))
	replicas := "global"
	if r := spec.Mode.Replicated; r != nil && r.Replicas != nil {
		replicas = fmt.Sprint(*r.Replicas)
	}
	add("replicas", replicas)
	add("entrypoint", list(cs.Command))
	add("command", list(cs.Args))
	env := map[string]string{}
	for _, kv := range cs.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if sensitive[k] {
			out = append(out, field{name: "env." + k, value: hash(k, env[k]), sensitive: true})
		} else {
			add("env."+k, fmt.Sprintf("%q", env[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Labels)) {
		if k != LabelImage && k != LabelApply { // image: part of "image"
			add("labels."+k, fmt.Sprintf("%q", spec.Labels[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cs.Labels)) {
		add("container_labels."+k, fmt.Sprintf("%q", cs.Labels[k]))
	}
	add("hostname", cs.Hostname)
	add("working_dir", cs.Dir)
	add("user", cs.User)
	add("extra_hosts", list(cs.Hosts))
	var mounts []string
	for _, m := range cs.Mounts {
		s := fmt.Sprintf("%s:%s:%s", m.Type, m.Source, m.Target)
		if m.ReadOnly {
			s += ":ro"
		}
		mounts = append(mounts, s)
	}
	add("volumes", list(mounts))
	grace := ""
	if cs.StopGracePeriod != nil {
		grace = cs.StopGracePeriod.String()
	}
	add("stop_grace_period", grace)
	health := ""
	if h := cs.Healthcheck; h != nil {
		health = fmt.Sprintf("%s interval %s timeout %s retries %d start_period %s", list(h.Test), h.Interval, h.Timeout, h.Retries, h.StartPeriod)
	}
	add("health", health)
	limits, reservations := "", ""
	if r := spec.TaskTemplate.Resources; r != nil {
		if l := r.Limits; l != nil && (l.NanoCPUs != 0 || l.MemoryBytes != 0) {
			limits = fmt.Sprintf("cpus %s memory %d", cpus(l.NanoCPUs), l.MemoryBytes)
		}
		if l := r.Reservations; l != nil && (l.NanoCPUs != 0 || l.MemoryBytes != 0) {
			reservations = fmt.Sprintf("cpus %s memory %d", cpus(l.NanoCPUs), l.MemoryBytes)
		}
	}
	add("resources.limits", limits)
	add("resources.reservations", reservations)
	restart := ""
	if r := spec.TaskTemplate.RestartPolicy; r != nil {
		restart = string(r.Condition)
	}
	add("restart", restart)
	var constraints, prefs []string
	maxReplicas := uint64(0)
	if p := spec.TaskTemplate.Placement; p != nil {
		constraints = p.Constraints
		for _, pr := range p.Preferences {
			if pr.Spread != nil {
				prefs = append(prefs, "spread="+pr.Spread.SpreadDescriptor)
			}
		}
		maxReplicas = p.MaxReplicas
	}
	add("placement.constraints", list(constraints))
	add("placement.preferences", list(prefs))
	add("placement.max_replicas", fmt.Sprint(maxReplicas))
	for _, c := range []struct {
		name string
		u    *swarm.UpdateConfig
	}{{"update", spec.UpdateConfig}, {"rollback", spec.RollbackConfig}} {
		v := ""
		if u := c.u; u != nil {
			v = fmt.Sprintf("parallelism %d, delay %s, order %s, failure_action %s, monitor %s", u.Parallelism, u.Delay, orDefault(u.Order, "stop-first"), orDefault(u.FailureAction, "pause"), u.Monitor)
		}
		add(c.name, v)
	}
	mode, ports := "", []string(nil)
	if e := spec.EndpointSpec; e != nil {
		mode = string(e.Mode)
		for _, p := range e.Ports {
			ports = append(ports, fmt.Sprintf("%d:%d/%s (%s)", p.PublishedPort, p.TargetPort, p.Protocol, p.PublishMode))
		}
	}
	add("endpoint_mode", orDefault(mode, "vip"))
	add("ports", list(ports))
	var nets []string
	for _, n := range spec.TaskTemplate.Networks {
		nets = append(nets, netName(n.Target)+" aliases "+list(n.Aliases))
	}
	add("networks", list(nets))
	return out
}

// imageText shows a pinned image: the configured reference with the image
// ID it was pinned to, or the reference with its registry digest.
func imageText(configured, pin string) string {
	if id, ok := strings.CutPrefix(pin, "sha256:"); ok && configured != "" {
		return configured + " (image " + id[:min(12, len(id))] + ")"
	}
	return pin
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func cpus(nano int64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", float64(nano)/1e9), "0"), ".")
}

// list renders a string list as the plan shows one.
func list(l []string) string {
	if len(l) == 0 {
		return ""
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// diff compares the desired spec's fields with the live spec's.
func diff(want, have []field) []planner.FieldChange {
	h := map[string]field{}
	for _, f := range have {
		h[f.name] = f
	}
	w := map[string]bool{}
	var out []planner.FieldChange
	show := func(f field, ok bool) string {
		switch {
		case !ok || f.value == "":
			return "(none)"
		case f.sensitive:
			return "(sensitive value)"
		}
		return f.value
	}
	for _, f := range want {
		w[f.name] = true
		old, ok := h[f.name]
		if ok && old.value == f.value {
			continue
		}
		out = append(out, planner.FieldChange{Field: f.name, Old: show(old, ok), New: show(f, true)})
	}
	for _, f := range have {
		if !w[f.name] {
			out = append(out, planner.FieldChange{Field: f.name, Old: show(f, true), New: "(none)"})
		}
	}
	return out
}

// monitorOf is how long a service's tasks must keep running to count as
// converged.
func monitorOf(svc *config.Service) time.Duration {
	if svc.Update.Monitor > 0 {
		return svc.Update.Monitor
	}
	return config.DefaultUpdateMonitor
}
