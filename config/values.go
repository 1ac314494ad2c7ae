package config

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// sensitiveMark is the cty mark carried by the values of sensitive variables
// and by everything computed from them.
type mark string

const sensitiveMark = mark("sensitive")

// result is an evaluated attribute: known, not null, unmarked and converted
// to the requested type.
type result struct {
	val       cty.Value
	sensitive bool      // derived from a sensitive value
	rng       hcl.Range // the expression's range
	raw       cty.Value // the value as evaluated, marks and all
}

// evalStatus says why eval gave no value.
type evalStatus int

const (
	evalOK      evalStatus = iota
	evalUnset              // no attribute
	evalNull               // the value is null: treated as unset
	evalUnknown            // depends on something unknown (an earlier error, an unset variable under validation)
	evalFailed             // diagnostics were reported
)

// eval evaluates an attribute in the configuration scope (var, local,
// functions) and converts it to ty. Every problem becomes a diagnostic; the
// caller only checks the status.
func (l *loader) eval(a *hcl.Attribute, ty cty.Type) (result, evalStatus) {
	if a == nil {
		return result{}, evalUnset
	}
	r := result{rng: a.Expr.Range()}
	if !l.checkRefs(a.Expr, scopeConfig, "") {
		return r, evalFailed
	}
	v, diags := a.Expr.Value(l.ctx)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return r, evalFailed
	}
	r.raw = v
	if v.ContainsMarked() {
		r.sensitive = true
		l.collectSensitive(v, false)
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		if l.required[a] {
			l.errorf(r.rng, "Missing required value", "The argument %q is required, but its value is null.", a.Name)
			return r, evalFailed
		}
		return r, evalNull
	}
	if !v.IsWhollyKnown() {
		if l.serviceRefs {
			// service.NAME.ATTR is unknown until placement: check the
			// type now.
			if _, err := convert.Convert(v, ty); err != nil {
				l.errorf(r.rng, "Incorrect attribute value type", "Inappropriate value for attribute %q: %s.", a.Name, convertErr(err))
				return r, evalFailed
			}
		}
		return r, evalUnknown
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		l.errorf(r.rng, "Incorrect attribute value type", "Inappropriate value for attribute %q: %s.", a.Name, convertErr(err))
		return r, evalFailed
	}
	if containsNull(cv) {
		l.errorf(r.rng, "Invalid value", "The value for attribute %q must not contain null.", a.Name)
		return r, evalFailed
	}
	r.val = cv
	return r, evalOK
}

// convertErr renders a conversion error with its path, as Terraform does.
func convertErr(err error) string {
	if pe, ok := err.(cty.PathError); ok && len(pe.Path) > 0 {
		return fmt.Sprintf("%s: %s", pathString(pe.Path), pe.Error())
	}
	return err.Error()
}

func pathString(p cty.Path) string {
	var b strings.Builder
	for _, step := range p {
		switch s := step.(type) {
		case cty.GetAttrStep:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.Name)
		case cty.IndexStep:
			switch {
			case !s.Key.IsKnown() || s.Key.IsNull():
				b.WriteString("[?]")
			case s.Key.Type() == cty.String:
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			case s.Key.Type() == cty.Number:
				fmt.Fprintf(&b, "[%s]", s.Key.AsBigFloat().Text('f', -1))
			default:
				b.WriteString("[?]")
			}
		}
	}
	if b.Len() == 0 {
		return "value"
	}
	return b.String()
}

// containsNull reports whether a known value has a null anywhere inside.
func containsNull(v cty.Value) bool {
	if v.IsNull() {
		return true
	}
	if !v.IsKnown() || !v.CanIterateElements() {
		return false
	}
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		if containsNull(ev) {
			return true
		}
	}
	return false
}

// collectSensitive records the string form of every primitive inside v that
// is marked (or sits inside something marked), for redaction.
func (l *loader) collectSensitive(v cty.Value, inherited bool) {
	if v.IsMarked() {
		inherited = true
		v, _ = v.Unmark()
	}
	if !v.IsKnown() || v.IsNull() {
		return
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		if inherited {
			l.addSensitive(v.AsString())
		}
	case ty == cty.Number:
		if inherited {
			l.addSensitive(v.AsBigFloat().Text('f', -1))
		}
	case v.CanIterateElements():
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			l.collectSensitive(ev, inherited)
		}
	}
}

func (l *loader) addSensitive(s string) {
	if s != "" {
		l.sensitive[s] = struct{}{}
	}
}

// warnSensitive warns when a sensitive value ends up in an attribute that is
// shown in plans, labels or container metadata.
func (l *loader) warnSensitive(r result, what string) {
	if !r.sensitive {
		return
	}
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  "Sensitive value in a plain attribute",
		Detail: fmt.Sprintf("The value of %s derives from a sensitive variable. berth redacts it from its own output, "+
			"but it is stored in plain sight on the node. Pass secrets through env or sensitive_env.", what),
		Subject: r.rng.Ptr(),
	})
}

// require marks attributes that may not be null.
func (l *loader) require(attrs hcl.Attributes, names ...string) {
	for _, n := range names {
		if a := attrs[n]; a != nil {
			l.required[a] = true
		}
	}
}

// str evaluates a string attribute.
func (l *loader) str(a *hcl.Attribute) (string, result, bool) {
	r, st := l.eval(a, cty.String)
	if st != evalOK {
		return "", r, false
	}
	return r.val.AsString(), r, true
}

// boolean evaluates a bool attribute.
func (l *loader) boolean(a *hcl.Attribute) (bool, bool) {
	r, st := l.eval(a, cty.Bool)
	if st != evalOK {
		return false, false
	}
	return r.val.True(), true
}

// integer evaluates a whole number attribute and checks it is within
// [lo, hi]; what names it in diagnostics ("replicas", "port").
func (l *loader) integer(a *hcl.Attribute, lo, hi int64, what string) (int, bool) {
	r, st := l.eval(a, cty.Number)
	if st != evalOK {
		return 0, false
	}
	bf := r.val.AsBigFloat()
	if !bf.IsInt() {
		l.errorf(r.rng, "Invalid "+what, "%s must be a whole number, not %s.", a.Name, l.show(r, bf.Text('g', 10)))
		return 0, false
	}
	n, acc := bf.Int64()
	if acc != big.Exact || n < lo || n > hi {
		l.errorf(r.rng, "Invalid "+what, "%s must be between %d and %d, not %s.", a.Name, lo, hi, l.show(r, bf.Text('g', 10)))
		return 0, false
	}
	return int(n), true
}

// number evaluates a number attribute.
func (l *loader) number(a *hcl.Attribute) (float64, result, bool) {
	r, st := l.eval(a, cty.Number)
	if st != evalOK {
		return 0, r, false
	}
	f, _ := r.val.AsBigFloat().Float64()
	return f, r, true
}

// stringList evaluates a list of strings.
func (l *loader) stringList(a *hcl.Attribute) ([]string, result, bool) {
	r, st := l.eval(a, cty.List(cty.String))
	if st != evalOK {
		return nil, r, false
	}
	out := make([]string, 0, r.val.LengthInt())
	for it := r.val.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		out = append(out, ev.AsString())
	}
	return out, r, true
}

// stringMap evaluates a map of strings, and reports per key whether the
// value derives from a sensitive value.
func (l *loader) stringMap(a *hcl.Attribute) (map[string]string, map[string]bool, result, bool) {
	r, st := l.eval(a, cty.Map(cty.String))
	if st != evalOK {
		return nil, nil, r, false
	}
	out := map[string]string{}
	for it := r.val.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		out[k.AsString()] = ev.AsString()
	}
	sens := map[string]bool{}
	if r.sensitive {
		v := r.raw
		whole := v.IsMarked()
		v, _ = v.Unmark()
		if v.IsKnown() && !v.IsNull() && v.CanIterateElements() {
			for it := v.ElementIterator(); it.Next(); {
				k, ev := it.Element()
				k, _ = k.UnmarkDeep()
				if k.IsKnown() && !k.IsNull() && k.Type() == cty.String {
					sens[k.AsString()] = whole || ev.ContainsMarked()
				}
			}
		} else {
			whole = true
		}
		if whole {
			for k := range out {
				sens[k] = true
			}
		}
	}
	return out, sens, r, true
}

// duration evaluates a Go/Docker-style duration string ("10s", "1m30s").
func (l *loader) duration(a *hcl.Attribute) (time.Duration, bool) {
	s, r, ok := l.str(a)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		l.errorf(r.rng, "Invalid duration", "%s must be a duration such as \"10s\", \"1m30s\" or \"500ms\", not %s.", a.Name, l.show(r, fmt.Sprintf("%q", s)))
		return 0, false
	}
	if d < 0 {
		l.errorf(r.rng, "Invalid duration", "%s must not be negative.", a.Name)
		return 0, false
	}
	return d, true
}

// MinMemory is Docker's smallest memory limit.
const MinMemory = 6 * 1024 * 1024

// maxMemory is an upper bound that keeps arithmetic far from overflow (1 PiB).
const maxMemory = 1 << 50

// size evaluates a memory size: a string such as "256MiB" or "1g" (binary
// units, docker/go-units' RAMInBytes), or a number of bytes.
func (l *loader) size(a *hcl.Attribute) (int64, bool) {
	s, r, ok := l.str(a)
	if !ok {
		return 0, false
	}
	n, err := units.RAMInBytes(strings.TrimSpace(s))
	if err != nil || n <= 0 || n > maxMemory {
		l.errorf(r.rng, "Invalid size", "%s must be a size such as \"256MiB\", \"512m\" or \"2GiB\", not %s.", a.Name, l.show(r, fmt.Sprintf("%q", s)))
		return 0, false
	}
	return n, true
}

// oneOf evaluates a string attribute that must be one of the given values.
func (l *loader) oneOf(a *hcl.Attribute, what string, allowed ...string) (string, bool) {
	s, r, ok := l.str(a)
	if !ok {
		return "", false
	}
	if slices.Contains(allowed, s) {
		return s, true
	}
	quoted := make([]string, len(allowed))
	for i, v := range allowed {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	l.errorf(r.rng, "Invalid "+what, "%s must be one of %s, not %s.%s", a.Name, strings.Join(quoted, ", "), l.show(r, fmt.Sprintf("%q", s)), didYouMean(s, allowed))
	return "", false
}

// show returns s, or a placeholder when the value is sensitive.
func (l *loader) show(r result, s string) string {
	if r.sensitive {
		return "(sensitive value)"
	}
	return s
}

// errorf appends an error diagnostic.
func (l *loader) errorf(rng hcl.Range, summary, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

// warnf appends a warning diagnostic.
func (l *loader) warnf(rng hcl.Range, summary, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

// duplicatef reports a second definition: Subject the duplicate, Detail
// names where the first one was (packer's style).
func (l *loader) duplicatef(dup, first hcl.Range, summary, format string, args ...any) {
	l.errorf(dup, summary, "%s The first one is at %s.", fmt.Sprintf(format, args...), rangeString(first))
}

// rangeString is "FILE:LINE,COL" for a range's start.
func rangeString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

// inSourceOrder lists attributes in the order they appear in the file.
func inSourceOrder(attrs hcl.Attributes) []*hcl.Attribute {
	return slices.SortedFunc(maps.Values(attrs), func(a, b *hcl.Attribute) int {
		return a.Range.Start.Byte - b.Range.Start.Byte
	})
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
