package planner

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
)

// Revision is a service's resolved container spec as a plan makes it: what
// an apply records in its audit record so that a later rollback can run it
// again. Sensitive env values are only their hash (EnvVar.Secret is never
// serialised), as in the berth.spec label. Replicas, placement, ports and
// the update policy are not part of it: a rollback takes those from the
// configuration.
type Revision struct {
	Image string `json:"image"`
	// ImageIDs are the IDs the image reference had on the nodes that ran
	// the service once the apply succeeded (filled in by the executor;
	// nodes may differ where images were not shipped by berth); a rollback
	// runs one of them on each node, or refuses.
	ImageIDs         []string          `json:"image_ids,omitempty"`
	Command          []string          `json:"command,omitempty"`
	Entrypoint       []string          `json:"entrypoint,omitempty"`
	Env              []EnvVar          `json:"env,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"` // user labels
	Volumes          []VolumeSpec      `json:"volumes,omitempty"`
	Restart          string            `json:"restart,omitempty"`
	StopGraceSeconds int               `json:"stop_grace_seconds,omitempty"`
	NanoCPUs         int64             `json:"nano_cpus,omitempty"`
	MemoryBytes      int64             `json:"memory_bytes,omitempty"`
	Health           *HealthSpec       `json:"health,omitempty"`
	User             string            `json:"user,omitempty"`
	WorkingDir       string            `json:"working_dir,omitempty"`
	Hostname         string            `json:"hostname,omitempty"`
	ExtraHosts       []string          `json:"extra_hosts,omitempty"`
}

// Rollback is the desired state of a rollback plan: per service, the
// revision recorded by the apply ApplyID. A service of the configuration
// without one there is planned as configured (the plan warns).
type Rollback struct {
	ApplyID  string
	Services map[string]*Revision
}

// revisionOf records a resolved service.
func revisionOf(d *serviceDesired) *Revision {
	t := &d.template
	r := &Revision{Image: t.Image, Command: t.Command, Entrypoint: t.Entrypoint, Labels: d.svc.Labels,
		Volumes: t.Volumes, Restart: t.Restart, StopGraceSeconds: t.StopGraceSeconds,
		NanoCPUs: t.NanoCPUs, MemoryBytes: t.MemoryBytes, Health: t.Health, User: t.User,
		WorkingDir: t.WorkingDir, Hostname: t.Hostname, ExtraHosts: t.ExtraHosts}
	if len(t.Env) > 0 {
		r.Env = slices.Clone(t.Env)
	}
	return r
}

// rollbackService returns svc (as its references resolved it) with the
// container fields of revision rv. A sensitive env value is never recorded:
// it is taken from the configuration when its hash there is the recorded
// one, and the rollback is refused otherwise.
func rollbackService(project string, svc *config.Service, rv *Revision, applyID string) (*config.Service, hcl.Diagnostics) {
	out := *svc
	out.Image = rv.Image
	out.Command, out.Entrypoint = rv.Command, rv.Entrypoint
	out.Labels = rv.Labels
	out.Restart = rv.Restart
	out.StopGracePeriod = config.Millis(int64(rv.StopGraceSeconds) * 1000)
	out.Resources = config.Resources{NanoCPUs: rv.NanoCPUs, MemoryBytes: rv.MemoryBytes}
	out.User, out.WorkingDir, out.Hostname, out.ExtraHosts = rv.User, rv.WorkingDir, rv.Hostname, rv.ExtraHosts
	out.Volumes = nil
	for _, v := range rv.Volumes {
		out.Volumes = append(out.Volumes, config.Volume{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	out.Health = nil
	if h := rv.Health; h != nil {
		out.Health = &config.Health{HTTP: h.HTTP, TCP: h.TCP, Cmd: h.Cmd, Port: h.Port,
			Interval: config.Millis(h.IntervalMillis), Timeout: config.Millis(h.TimeoutMillis),
			Retries: h.Retries, StartPeriod: config.Millis(h.StartPeriodMillis)}
	}
	var diags hcl.Diagnostics
	out.Env = make(map[string]config.EnvVar, len(rv.Env))
	for _, e := range rv.Env {
		if !e.Sensitive {
			out.Env[e.Name] = config.EnvVar{Value: e.Value}
			continue
		}
		cur, ok := svc.Env[e.Name]
		if !ok || !cur.Sensitive || SecretHash(project, svc.Name, e.Name, cur.Value) != e.Hash {
			r := svc.DeclRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("Cannot roll back service %q: sensitive env %s had another value at apply %s", svc.Name, e.Name, applyID),
				Detail: "berth never stores sensitive values, only their hash, so it cannot restore that one. " +
					"Give the configuration that value again (the same -var, -var-file or BERTH_VAR_ input as then) and run the rollback again.",
				Subject: &r})
			continue
		}
		out.Env[e.Name] = cur
	}
	return &out, diags
}

// rollbackImage decides how a rollback plan gets the recorded image onto
// node n: present (the reference names the recorded ID there), tag (the
// node holds the ID under another name), send (the local engine holds it
// under that reference), or refused: a pull could fetch another image.
func (p *planState) rollbackImage(n *nodeView, rv *Revision) (kind string, ok bool) {
	ref := NormalizeRef(rv.Image)
	id, present := n.imageIDs[ref]
	img, local := p.localImage(ref)
	if len(rv.ImageIDs) == 0 {
		// Recorded without its ID: the reference is all there is.
		switch {
		case present:
			return "", true
		case local:
			return ImageSend, true
		}
		return "", false
	}
	switch {
	case present && slices.Contains(rv.ImageIDs, id):
		return "", true
	case local && slices.Contains(rv.ImageIDs, img.ID) && n.imageSet[img.ID]:
		return ImageTag, true
	case local && slices.Contains(rv.ImageIDs, img.ID):
		return ImageSend, true
	}
	return "", false
}

// rollbackWarnings names the services of the configuration a rollback
// plans as configured, having no revision in the apply rolled back to.
func (p *planState) rollbackWarnings() {
	rb := p.opts.Rollback
	if rb == nil {
		return
	}
	var missing []string
	for _, s := range p.cfg.Services {
		if rb.Services[s.Name] == nil {
			missing = append(missing, s.Name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rb.Services)) {
		if p.cfg.Service(name) == nil {
			p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
				"rollback to apply %s: service %q is no longer in the configuration and is not restored", rb.ApplyID, name))
		}
	}
	for _, name := range missing {
		p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
			"rollback to apply %s: service %q has no revision there (added since): it is planned as configured", rb.ApplyID, name))
	}
}

// rolledBack warns, once per service, that the plan undoes a berth
// rollback: the service runs the revision of apply "to", and the
// configuration, which the rollback left as it was, differs from it.
func (p *planState) rolledBack(service, to string) {
	if p.warnedRollback == nil {
		p.warnedRollback = map[string]bool{}
	}
	if p.warnedRollback[service] {
		return
	}
	p.warnedRollback[service] = true
	p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
		"service %q runs the revision of apply %s, restored by berth rollback; the configuration differs, and this plan returns the service to it: apply it, or change the configuration to keep the rollback", service, to))
}

// rollbackRevision is the revision a rollback plan gives service, or nil.
func (p *planState) rollbackRevision(service string) *Revision {
	if p.opts.Rollback == nil {
		return nil
	}
	return p.opts.Rollback.Services[service]
}

// refuseRollbackImages makes an error of every recorded image a rollback
// cannot put on a node: keys are "service\x00image", values the nodes.
func (p *planState) refuseRollbackImages(order []string, nodes map[string]map[string]bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, k := range order {
		svc, img, _ := strings.Cut(k, "\x00")
		rv := p.rollbackRevision(svc)
		id := ""
		if len(rv.ImageIDs) > 0 {
			short := make([]string, len(rv.ImageIDs))
			for i, x := range rv.ImageIDs {
				short[i] = ShortID(x)
			}
			id = " (" + strings.Join(short, ", ") + ")"
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("Cannot roll back service %q to apply %s: image %s%s is no longer on %s, nor on the local engine",
				svc, p.opts.Rollback.ApplyID, img, id, strings.Join(slices.Sorted(maps.Keys(nodes[k])), ", ")),
			Detail: "A rollback runs the exact image the apply ran, sent from the local engine; it never pulls or builds it again, " +
				"since the name may now stand for another image. Put that image on the local engine (docker load, or docker pull by digest " +
				"and docker tag) and run the rollback again, or roll back to another apply with -to. Nothing was changed."})
	}
	return diags
}
