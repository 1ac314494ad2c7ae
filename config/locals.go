package config

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// declareLocals collects the attributes of every locals block.
func (l *loader) declareLocals(blocks hcl.Blocks) {
	for _, b := range blocks {
		attrs, diags := b.Body.JustAttributes()
		l.diags = append(l.diags, diags...)
		for _, a := range inSourceOrder(attrs) {
			if prev, dup := l.locals[a.Name]; dup {
				l.duplicatef(a.NameRange, prev.NameRange, "Duplicate local value definition", "A local value named %q was already defined.", a.Name)
				continue
			}
			l.locals[a.Name] = a
		}
	}
}

// localDeps returns the locals an expression refers to.
func localDeps(expr hcl.Expression) []string {
	var deps []string
	for _, tr := range expr.Variables() {
		if tr.RootName() != "local" {
			continue
		}
		if name, ok := refName(tr); ok {
			deps = append(deps, name)
		}
	}
	return deps
}

// evalLocals evaluates the locals in dependency order, reporting cycles. A
// local that fails (or sits on a cycle) is unknown, so that what uses it is
// skipped rather than reported twice.
func (l *loader) evalLocals() {
	vars := l.varObject()
	values := map[string]cty.Value{}
	deps := func(name string) []string {
		var out []string
		for _, dep := range localDeps(l.locals[name].Expr) {
			if _, ok := l.locals[dep]; ok {
				out = append(out, dep)
			}
		}
		return out
	}
	onCycle := func(cycle []string) {
		for _, n := range cycle {
			values[n] = cty.DynamicVal
		}
		a := l.locals[cycle[0]]
		l.errorf(a.NameRange, "Cycle in local values",
			"The local values refer to each other in a cycle: local.%s.", strings.Join(cycle, " -> local."))
	}
	eval := func(name string) {
		if _, set := values[name]; set {
			return // on a cycle
		}
		l.ctx = &hcl.EvalContext{
			Variables: map[string]cty.Value{"var": vars, "local": localObject(values)},
			Functions: Functions(),
		}
		values[name] = cty.DynamicVal
		a := l.locals[name]
		if !l.checkRefs(a.Expr, scopeConfig, "") {
			return
		}
		v, diags := a.Expr.Value(l.ctx)
		l.diags = append(l.diags, diags...)
		if !diags.HasErrors() {
			values[name] = v
		}
	}
	walkDeps(sortedKeys(l.locals), deps, onCycle, eval)
	l.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": vars, "local": localObject(values)},
		Functions: Functions(),
	}
}

func localObject(values map[string]cty.Value) cty.Value {
	if len(values) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(values)
}
