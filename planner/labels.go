package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// SpecFields are the fields of a replica that berth compares, stored as JSON
// in the berth.spec label. Only what the user set is here, normalised, so
// daemon defaults never cause a diff. Sensitive env values appear as their
// hash only.
type SpecFields struct {
	Image      string            `json:"image"`
	Command    []string          `json:"command,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Env        map[string]string `json:"env,omitempty"` // sensitive: "sha256:..."
	Sensitive  []string          `json:"sensitive,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"` // user labels only
	Ports      []string          `json:"ports,omitempty"`  // "8080:80/tcp", "127.0.0.1:8080:80/tcp"
	Volumes    []string          `json:"volumes,omitempty"`
	Health     string            `json:"health,omitempty"`
	StopGrace  int               `json:"stop_grace,omitempty"`
	User       string            `json:"user,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	ExtraHosts []string          `json:"extra_hosts,omitempty"`
	DependsOn  []string          `json:"depends_on,omitempty"`

	// In-place fields: stored for display, compared against the engine.
	NanoCPUs    int64  `json:"nano_cpus,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	Restart     string `json:"restart,omitempty"`
}

// replaceHash hashes the fields whose change forces a replace. DependsOn and
// the in-place fields are left out.
func (f *SpecFields) replaceHash() string {
	g := *f
	g.NanoCPUs, g.MemoryBytes, g.Restart, g.DependsOn = 0, 0, "", nil
	b, _ := json.Marshal(&g)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// specFields derives the compared fields from a resolved spec.
func specFields(spec *ContainerSpec, userLabels map[string]string, dependsOn []string) *SpecFields {
	f := &SpecFields{
		Image:       spec.Image,
		Command:     spec.Command,
		Entrypoint:  spec.Entrypoint,
		Labels:      userLabels,
		StopGrace:   spec.StopGraceSeconds,
		User:        spec.User,
		WorkingDir:  spec.WorkingDir,
		Hostname:    spec.Hostname,
		ExtraHosts:  spec.ExtraHosts,
		DependsOn:   dependsOn,
		NanoCPUs:    spec.NanoCPUs,
		MemoryBytes: spec.MemoryBytes,
		Restart:     spec.Restart,
	}
	if len(spec.Env) > 0 {
		f.Env = make(map[string]string, len(spec.Env))
		for _, e := range spec.Env {
			if e.Sensitive {
				f.Env[e.Name] = e.Hash
				f.Sensitive = append(f.Sensitive, e.Name)
			} else {
				f.Env[e.Name] = e.Value
			}
		}
	}
	for _, p := range spec.Ports {
		f.Ports = append(f.Ports, p.String())
	}
	for _, v := range spec.Volumes {
		s := v.Source + ":" + v.Target
		if v.ReadOnly {
			s += ":ro"
		}
		f.Volumes = append(f.Volumes, s)
	}
	if h := spec.Health; h != nil {
		f.Health = healthString(h)
	}
	return f
}

func healthString(h *HealthSpec) string {
	var what string
	switch {
	case h.HTTP != "":
		what = fmt.Sprintf("http %s port %d", h.HTTP, h.Port)
	case h.TCP:
		what = fmt.Sprintf("tcp port %d", h.Port)
	default:
		what = "cmd " + strings.Join(quoteAll(h.Cmd), " ")
	}
	return fmt.Sprintf("%s every %dms timeout %dms retries %d start %dms",
		what, h.IntervalMillis, h.TimeoutMillis, h.Retries, h.StartPeriodMillis)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// parseSpecLabel reads the berth.spec label; ok is false when it is missing
// or does not parse (edited by hand), which the planner shows as drift.
func parseSpecLabel(labels map[string]string) (*SpecFields, bool) {
	raw, ok := labels[LabelSpec]
	if !ok {
		return nil, false
	}
	var f SpecFields
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		return nil, false
	}
	return &f, true
}

// parsedSpec is a parsed berth.spec label and the replace hash of its
// fields, cached per label value: every replica of a service carries the
// same label, so a plan parses it once per service, not once per container.
type parsedSpec struct {
	fields *SpecFields
	ok     bool
	hash   string
}

// spec parses the container's berth.spec label through the plan's cache.
func (p *planState) spec(labels map[string]string) parsedSpec {
	raw, present := labels[LabelSpec]
	if !present {
		return parsedSpec{}
	}
	if ps, ok := p.specCache[raw]; ok {
		return ps
	}
	f, ok := parseSpecLabel(labels)
	ps := parsedSpec{fields: f, ok: ok}
	if ok {
		ps.hash = f.replaceHash()
	}
	if p.specCache == nil {
		p.specCache = map[string]parsedSpec{}
	}
	p.specCache[raw] = ps
	return ps
}

// asideMarker separates a container's name from the ID of the apply that
// renamed it aside: web-1 becomes web-1_berth_old_<apply id>.
const asideMarker = "_berth_old_"

// AsideName is the name a container gets while an apply replaces or deletes
// it: stopped and kept under this name until the apply commits.
func AsideName(name, applyID string) string { return name + asideMarker + applyID }

// ParseAsideName splits a renamed-aside container's name; ok is false for an
// ordinary name.
func ParseAsideName(name string) (orig, applyID string, ok bool) {
	i := strings.LastIndex(name, asideMarker)
	if i < 0 {
		return "", "", false
	}
	return name[:i], name[i+len(asideMarker):], true
}

// ContainerName is the name of a replica's container.
func ContainerName(project, service string, replica int) string {
	return project + "-" + service + "-" + strconv.Itoa(replica)
}

// containerNameAs is ContainerName, returning have itself (no new string)
// when it is that name already: a no-op plan names every replica it keeps.
func containerNameAs(have, project, service string, replica int) string {
	var num [20]byte
	n := strconv.AppendInt(num[:0], int64(replica), 10)
	if len(have) == len(project)+len(service)+2+len(n) && have[len(project)] == '-' &&
		have[len(project)+1+len(service)] == '-' && have[:len(project)] == project &&
		have[len(project)+1:len(project)+1+len(service)] == service && have[len(have)-len(n):] == string(n) {
		return have
	}
	return ContainerName(project, service, replica)
}

// diffFields compares two SpecFields and returns the changed fields, sorted
// by field name. Sensitive values are masked.
func diffFields(old, new *SpecFields) []FieldChange {
	var out []FieldChange
	add := func(field, o, n string) {
		if o != n {
			out = append(out, FieldChange{Field: field, Old: o, New: n})
		}
	}
	add("image", strconv.Quote(old.Image), strconv.Quote(new.Image))
	add("command", listString(old.Command), listString(new.Command))
	add("entrypoint", listString(old.Entrypoint), listString(new.Entrypoint))
	oldSens, newSens := setOf(old.Sensitive), setOf(new.Sensitive)
	for _, k := range unionKeys(old.Env, new.Env) {
		o, oo := old.Env[k]
		n, no := new.Env[k]
		if oo && no && o == n {
			continue
		}
		show := func(v string, present, sensitive bool) string {
			switch {
			case !present:
				return "(unset)"
			case sensitive:
				return "(sensitive value)"
			default:
				return strconv.Quote(v)
			}
		}
		out = append(out, FieldChange{Field: "env." + k, Old: show(o, oo, oldSens[k]), New: show(n, no, newSens[k])})
	}
	for _, k := range unionKeys(old.Labels, new.Labels) {
		o, oo := old.Labels[k]
		n, no := new.Labels[k]
		if oo && no && o == n {
			continue
		}
		out = append(out, FieldChange{Field: "labels." + k, Old: quoteOrUnset(o, oo), New: quoteOrUnset(n, no)})
	}
	add("ports", listString(old.Ports), listString(new.Ports))
	add("volumes", listString(old.Volumes), listString(new.Volumes))
	add("health", orNone(old.Health), orNone(new.Health))
	add("stop_grace_period", fmt.Sprintf("%ds", old.StopGrace), fmt.Sprintf("%ds", new.StopGrace))
	add("user", strconv.Quote(old.User), strconv.Quote(new.User))
	add("working_dir", strconv.Quote(old.WorkingDir), strconv.Quote(new.WorkingDir))
	add("hostname", strconv.Quote(old.Hostname), strconv.Quote(new.Hostname))
	add("extra_hosts", listString(old.ExtraHosts), listString(new.ExtraHosts))
	return out
}

func quoteOrUnset(v string, present bool) string {
	if !present {
		return "(unset)"
	}
	return strconv.Quote(v)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func listString(l []string) string {
	if l == nil {
		return "(default)"
	}
	return "[" + strings.Join(quoteAll(l), ", ") + "]"
}

func setOf(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}

// unionKeys lists the keys of a and b, sorted, each once.
func unionKeys(a, b map[string]string) []string {
	keys := slices.AppendSeq(slices.Collect(maps.Keys(a)), maps.Keys(b))
	slices.Sort(keys)
	return slices.Compact(keys)
}
