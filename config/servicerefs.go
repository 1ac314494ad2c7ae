package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// This file is references between services: service.NAME.address,
// .endpoints and .url in a service's env, sensitive_env, command,
// entrypoint and labels. Their values depend on where the planner places
// NAME, so the attributes that use them are checked here with the values
// unknown, kept as expressions, and evaluated by Service.Resolve.

// ServiceAttrs are the attributes of service.NAME.
var ServiceAttrs = []string{"address", "endpoints", "url"}

// refFields are the service attributes that may refer to other services, in
// the order they are decoded.
var refFields = []string{"command", "entrypoint", "env", "sensitive_env", "labels"}

// ServiceRef is one reference to another service's value.
type ServiceRef struct {
	Service string // the service referred to
	Attr    string // "address", "endpoints" or "url"
	// Field is the attribute the reference sits in: "env",
	// "sensitive_env", "command", "entrypoint" or "labels".
	Field string
	// Key is the env variable or label whose value holds the reference,
	// when the attribute is written as an object ({ DB = ... }); "" when
	// the reference may affect the whole attribute.
	Key   string
	Range hcl.Range
}

// String is the reference as written: service.db.address.
func (r ServiceRef) String() string { return "service." + r.Service + "." + r.Attr }

// ServiceInfo is what other services see of a placed service.
type ServiceInfo struct {
	Address   string   // "host:port" of the replica with the lowest index
	Endpoints []string // "host:port" of every placed replica, by index
	URL       string   // "http://" + Address
}

// ServiceValue is the cty object bound to service.NAME.
func ServiceValue(si ServiceInfo) cty.Value {
	eps := cty.ListValEmpty(cty.String)
	if len(si.Endpoints) > 0 {
		vals := make([]cty.Value, len(si.Endpoints))
		for i, e := range si.Endpoints {
			vals[i] = cty.StringVal(e)
		}
		eps = cty.ListVal(vals)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"address":   cty.StringVal(si.Address),
		"endpoints": eps,
		"url":       cty.StringVal(si.URL),
	})
}

// unknownServiceValue is service.NAME before placement.
func unknownServiceValue() cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"address":   cty.UnknownVal(cty.String),
		"endpoints": cty.UnknownVal(cty.List(cty.String)),
		"url":       cty.UnknownVal(cty.String),
	})
}

// Dependencies are the services s starts after: its depends_on and the
// services it refers to, sorted, each once.
func (s *Service) Dependencies() []string {
	out := slices.Clone(s.DependsOn)
	for _, r := range s.Refs {
		out = append(out, r.Service)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// deferred is what Resolve needs: the attributes that refer to services,
// and the scope they were written in.
type deferred struct {
	attrs    hcl.Attributes
	ctx      *hcl.EvalContext // var, local and functions
	vars     map[string]*varDecl
	locals   map[string]*hcl.Attribute
	services map[string]bool
}

// parseServiceRef splits service.NAME.ATTR; ok is false for any other
// shape.
func parseServiceRef(tr hcl.Traversal) (name, attr string, ok bool) {
	if tr.RootName() != "service" || len(tr) < 3 {
		return "", "", false
	}
	name, ok = refName(tr)
	if !ok {
		return "", "", false
	}
	attr, ok = refName(tr[1:])
	return name, attr, ok
}

// checkServiceRef checks a service.NAME.ATTR reference: the service is
// declared and has the attribute. That it has a port and forms no cycle is
// checked once every service is decoded (checkServiceRefs).
func (l *loader) checkServiceRef(tr hcl.Traversal) bool {
	rng := tr.SourceRange()
	if len(tr) < 3 {
		l.errorf(rng, "Invalid reference", "A reference to a service must name the service and one of its attributes, as in service.db.address.")
		return false
	}
	name, attr, ok := parseServiceRef(tr)
	if !ok {
		l.errorf(rng, "Invalid reference", "A reference to a service must name the service and one of its attributes, as in service.db.address.")
		return false
	}
	if !l.serviceNames[name] {
		l.errorf(rng, "Reference to undeclared service", "A service named %q has not been declared.%s", name, didYouMean(name, sortedKeys(l.serviceNames)))
		return false
	}
	if !slices.Contains(ServiceAttrs, attr) {
		l.errorf(rng, "Unsupported attribute", "service.%s has no attribute %q; it has address, endpoints and url.%s", name, attr, didYouMean(attr, ServiceAttrs))
		return false
	}
	return true
}

// serviceTraversals lists the references to services in expr.
func serviceTraversals(expr hcl.Expression) []hcl.Traversal {
	var out []hcl.Traversal
	for _, tr := range expr.Variables() {
		if tr.RootName() == "service" {
			out = append(out, tr)
		}
	}
	return out
}

// deferServiceRefs records the service's references to other services and
// checks the attributes that hold them with the referred values unknown.
// It returns the attributes to decode now: those without references (env
// and sensitive_env are deferred together, so that a name set in both is
// still reported).
func (l *loader) deferServiceRefs(s *Service, attrs hcl.Attributes) hcl.Attributes {
	later := hcl.Attributes{}
	for _, name := range refFields {
		a := attrs[name]
		if a == nil || len(serviceTraversals(a.Expr)) == 0 {
			continue
		}
		later[name] = a
	}
	if later["env"] != nil || later["sensitive_env"] != nil {
		for _, name := range []string{"env", "sensitive_env"} {
			if a := attrs[name]; a != nil {
				later[name] = a
			}
		}
	}
	if len(later) == 0 {
		return attrs
	}
	for _, a := range inSourceOrder(later) {
		s.Refs = append(s.Refs, l.collectRefs(a)...)
	}
	l.checkDeferred(later)
	s.deferred = &deferred{attrs: later, ctx: l.ctx, vars: l.vars, locals: l.locals, services: l.serviceNames}
	now := hcl.Attributes{}
	for k, a := range attrs {
		if later[k] == nil {
			now[k] = a
		}
	}
	return now
}

// collectRefs lists the well-formed service references in an attribute,
// with the env variable or label each one sits in when the attribute is
// written as an object.
func (l *loader) collectRefs(a *hcl.Attribute) []ServiceRef {
	var out []ServiceRef
	add := func(expr hcl.Expression, key string) {
		for _, tr := range serviceTraversals(expr) {
			if name, attr, ok := parseServiceRef(tr); ok && l.serviceNames[name] && slices.Contains(ServiceAttrs, attr) {
				out = append(out, ServiceRef{Service: name, Attr: attr, Field: a.Name, Key: key, Range: tr.SourceRange()})
			}
		}
	}
	if a.Name == "env" || a.Name == "sensitive_env" || a.Name == "labels" {
		if pairs, diags := hcl.ExprMap(a.Expr); !diags.HasErrors() {
			for _, kv := range pairs {
				key := ""
				if k, diags := kv.Key.Value(nil); !diags.HasErrors() && k.Type() == cty.String && k.IsKnown() && !k.IsNull() {
					key = k.AsString()
				}
				add(kv.Key, "")
				add(kv.Value, key)
			}
			return out
		}
	}
	add(a.Expr, "")
	return out
}

// checkDeferred evaluates the attributes that refer to services with every
// service's values unknown, to report bad references and values of the
// wrong type (a list in env) before any plan.
func (l *loader) checkDeferred(attrs hcl.Attributes) {
	prev := l.ctx
	l.ctx = l.ctx.NewChild()
	l.ctx.Variables = map[string]cty.Value{"service": l.unknownServices()}
	l.serviceRefs = true
	defer func() { l.ctx, l.serviceRefs = prev, false }()
	for _, a := range inSourceOrder(attrs) {
		ty := cty.Map(cty.String)
		if a.Name == "command" || a.Name == "entrypoint" {
			ty = cty.List(cty.String)
		}
		r, st := l.eval(a, ty)
		if (st == evalOK || st == evalUnknown) && a.Name == "labels" {
			l.warnSensitive(r, "labels")
		}
	}
}

// unknownServices is `service` with every declared service unknown.
func (l *loader) unknownServices() cty.Value {
	if len(l.serviceNames) == 0 {
		return cty.EmptyObjectVal
	}
	m := map[string]cty.Value{}
	for name := range l.serviceNames {
		m[name] = unknownServiceValue()
	}
	return cty.ObjectVal(m)
}

// Resolve returns the service with the attributes that refer to other
// services evaluated, given those services' values by name. A service with
// no reference is returned as it is. Resolve does no I/O; it is how the
// planner finishes a service once the services it refers to are placed.
// Errors point at the reference or the attribute.
func (s *Service) Resolve(values map[string]ServiceInfo) (*Service, hcl.Diagnostics) {
	d := s.deferred
	if d == nil {
		return s, nil
	}
	var diags hcl.Diagnostics
	obj := map[string]cty.Value{}
	for _, r := range s.Refs {
		si, ok := values[r.Service]
		if !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Reference has no value",
				Detail:   fmt.Sprintf("%s has no value: no replica of %q is placed on a reachable node.", r, r.Service),
				Subject:  r.Range.Ptr(),
			})
			continue
		}
		obj[r.Service] = ServiceValue(si)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	l := &loader{
		vars: d.vars, locals: d.locals, serviceNames: d.services, serviceRefs: true,
		sensitive: map[string]struct{}{}, required: map[*hcl.Attribute]bool{},
	}
	l.ctx = d.ctx.NewChild()
	l.ctx.Variables = map[string]cty.Value{"service": cty.ObjectVal(obj)}
	c := *s
	c.Env = maps.Clone(s.Env)
	c.Labels = maps.Clone(s.Labels)
	c.deferred = nil
	l.decodeValueFields(&c, d.attrs)
	// Warnings were given when the configuration was loaded.
	for _, diag := range l.diags {
		if diag.Severity == hcl.DiagError {
			diags = append(diags, diag)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return &c, nil
}

// checkServiceRefs checks what a reference needs of the service it names:
// a port, and a replica.
func (l *loader) checkServiceRefs(s *Service, byName map[string]*Service) {
	for _, r := range s.Refs {
		t := byName[r.Service]
		if t == nil {
			continue
		}
		switch {
		case len(t.Ports) == 0:
			l.errorf(r.Range, "Referenced service has no port",
				"%s is \"host:port\" of the service's first port, but the service %q has no port block.", r, t.Name)
		case t.Replicas == 0 && l.svcExtra[t].replicasSet:
			l.errorf(r.Range, "Referenced service has no replica",
				"The service %q has replicas = 0, so %s has no value.", t.Name, r)
		}
	}
}

// depRange is the range of s's dependency on dep: its depends_on entry, or
// its first reference to dep.
func (l *loader) depRange(s *Service, dep string) (hcl.Range, string) {
	if slices.Contains(s.DependsOn, dep) {
		return l.dependsRange(s, dep), ""
	}
	for _, r := range s.Refs {
		if r.Service == dep {
			return r.Range, r.String()
		}
	}
	return s.Range("depends_on"), ""
}

// cycleText describes a dependency cycle, naming the references on it.
func (l *loader) cycleText(cycle []string, byName map[string]*Service) string {
	var refs []string
	for i := 0; i+1 < len(cycle); i++ {
		if _, ref := l.depRange(byName[cycle[i]], cycle[i+1]); ref != "" {
			refs = append(refs, fmt.Sprintf("%s in %s", ref, cycle[i]))
		}
	}
	if len(refs) == 0 {
		return ""
	}
	return fmt.Sprintf(" A reference counts as depends_on: %s.", strings.Join(refs, ", "))
}
