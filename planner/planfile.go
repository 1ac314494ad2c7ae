package planner

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/config"
)

// SavedPlan is the content of a plan file (plan -out): the plan (resolved
// desired state, actions, node fingerprints) and where its configuration
// lives. Sensitive values are not in it: applying it needs the same inputs
// again, and their hashes must match.
type SavedPlan struct {
	FormatVersion string `json:"format_version"`
	BerthVersion  string `json:"berth_version"`
	// ConfigDir is the absolute configuration directory, reloaded at apply
	// for the sensitive values only.
	ConfigDir string `json:"config_dir"`
	Plan      *Plan  `json:"plan"`
	// Revisions are the plan's (Plan.Revisions, which the JSON plan
	// leaves out), so that applying the file records them for rollback.
	Revisions map[string]*Revision `json:"revisions,omitempty"`
}

// EncodePlanFile gives the content of a plan file for sp (JSON, one trailing
// newline). The caller writes it (mode 0600); the planner does no I/O.
func EncodePlanFile(sp *SavedPlan) ([]byte, error) {
	sp.FormatVersion = FormatVersion
	if sp.Plan != nil && sp.Revisions == nil {
		sp.Revisions = sp.Plan.Revisions
	}
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodePlanFile reads the content of a plan file; name (the file's path)
// is only used in errors.
func DecodePlanFile(name string, b []byte) (*SavedPlan, error) {
	var sp SavedPlan
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, fmt.Errorf("%s is not a berth plan file: %w", name, err)
	}
	if sp.Plan == nil || sp.FormatVersion == "" {
		return nil, fmt.Errorf("%s is not a berth plan file", name)
	}
	if sp.FormatVersion[0] != FormatVersion[0] {
		return nil, fmt.Errorf("%s has plan format %s; this berth reads %s", name, sp.FormatVersion, FormatVersion)
	}
	sp.Plan.Revisions = sp.Revisions
	return &sp, nil
}

// FillSecrets puts the sensitive env values of cfg into the plan's specs,
// checking that each matches the hash recorded when the plan was made.
func FillSecrets(p *Plan, cfg *config.Config) error {
	var errs []error
	fill := func(a *Action) {
		if a.Spec == nil {
			return
		}
		for i := range a.Spec.Env {
			e := &a.Spec.Env[i]
			if !e.Sensitive {
				continue
			}
			svc := cfg.Service(a.Service)
			if svc == nil {
				errs = append(errs, fmt.Errorf("service %q is no longer in the configuration: its sensitive env %s cannot be supplied", a.Service, e.Name))
				continue
			}
			v, ok := svc.Env[e.Name]
			if !ok || !v.Sensitive {
				errs = append(errs, fmt.Errorf("service %q: sensitive env %s is not set in the configuration now", a.Service, e.Name))
				continue
			}
			if SecretHash(p.Project, a.Service, e.Name, v.Value) != e.Hash {
				errs = append(errs, fmt.Errorf("service %q: sensitive env %s has a different value than when the plan was made; pass the same -var, -var-file or BERTH_VAR_ inputs", a.Service, e.Name))
				continue
			}
			e.Secret = v.Value
		}
	}
	for i := range p.Actions {
		fill(&p.Actions[i])
	}
	return dedupJoin(errs)
}

func dedupJoin(errs []error) error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// Refingerprint computes node snapshots of live the way p's were computed
// (same nodes, same relevant ports and images), for the stale check.
func (p *Plan) Refingerprint(live *Live) []NodeSnapshot {
	ports := map[portKey]bool{}
	images := map[string]bool{}
	volumes := map[string]bool{}
	for _, sp := range p.Services {
		for _, pt := range sp.Ports {
			ports[keyOf(pt.Host())] = true
		}
		images[NormalizeRef(sp.Image)] = true
		for _, v := range sp.Volumes {
			volumes[v] = true
		}
	}
	// And every host port the plan's new containers bind (ingress backends
	// included). A foreign container on another port of the auto range
	// changes nothing this plan does: counting the whole range made every
	// saved plan stale whenever another project on a node replaced an
	// ingress replica (its backend moves).
	for _, a := range p.Actions {
		for _, pt := range a.Ports {
			ports[keyOf(pt.Host())] = true
		}
	}
	relevant := func(h HostPort) bool { return ports[keyOf(h)] }
	out := make([]NodeSnapshot, 0, len(p.Nodes))
	for _, n := range p.Nodes {
		st := live.Node(n.Name)
		s := NodeSnapshot{Name: n.Name, Removed: n.Removed}
		switch {
		case st == nil:
			s.Error = "not gathered"
		case !st.Reachable:
			s.Error = st.Error
		default:
			s.Reachable = true
			s.Items = fingerprintItems(st, p.Project, relevant, images, volumes)
		}
		s.Fingerprint = fingerprint(s)
		out = append(out, s)
	}
	return out
}
