package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// scope says which names an expression may refer to.
type scope int

const (
	// scopeConfig: var.NAME and local.NAME (attributes of project, node,
	// service and locals).
	scopeConfig scope = iota
	// scopeValidation: only var.SELF (a variable's validation block).
	scopeValidation
	// scopePlacement: only node (placement constraint and spread).
	scopePlacement
)

// nodeAttrs are the attributes of `node` in placement expressions.
var nodeAttrs = []string{"name", "address", "labels", "cpus", "memory", "arch", "os"}

// checkRefs reports every reference in expr that the scope does not allow or
// that names nothing, and returns whether all were fine. self is the
// variable's name in scopeValidation.
func (l *loader) checkRefs(expr hcl.Expression, sc scope, self string) bool {
	ok := true
	for _, tr := range expr.Variables() {
		if !l.checkRef(tr, sc, self) {
			ok = false
		}
	}
	return ok
}

// refName returns the name in a NAME.ATTR or NAME["ATTR"] reference.
func refName(tr hcl.Traversal) (string, bool) {
	if len(tr) < 2 {
		return "", false
	}
	switch s := tr[1].(type) {
	case hcl.TraverseAttr:
		return s.Name, true
	case hcl.TraverseIndex:
		k := s.Key
		if k.IsKnown() && !k.IsNull() && !k.IsMarked() && k.Type() == cty.String {
			return k.AsString(), true
		}
	}
	return "", false
}

func (l *loader) checkRef(tr hcl.Traversal, sc scope, self string) bool {
	root := tr.RootName()
	rng := tr.SourceRange()
	if sc == scopePlacement {
		if root == "node" {
			if name, ok := refName(tr); ok {
				for _, a := range nodeAttrs {
					if a == name {
						return true
					}
				}
				l.errorf(rng, "Unsupported attribute", "node has no attribute %q; it has name, address, labels, cpus, memory, arch and os.%s", name, didYouMean(name, nodeAttrs))
				return false
			}
			return true
		}
		what := "the variable " + fmt.Sprintf("%q", root)
		switch root {
		case "var":
			what = "input variables"
		case "local":
			what = "local values"
		}
		l.errorf(rng, "Invalid reference in placement",
			"A placement expression is evaluated on each node with only node (name, address, labels, cpus, memory, arch, os) and functions in scope; it cannot refer to %s.", what)
		return false
	}
	switch root {
	case "var":
		name, ok := refName(tr)
		if !ok {
			l.errorf(rng, "Invalid reference", "A reference to an input variable must name it, as in var.NAME.")
			return false
		}
		if sc == scopeValidation && name != self {
			l.errorf(rng, "Invalid reference in variable validation",
				"The condition for variable %q can refer only to var.%s, not var.%s.", self, self, name)
			return false
		}
		if _, declared := l.vars[name]; !declared {
			l.errorf(rng, "Reference to undeclared input variable",
				"An input variable with the name %q has not been declared. Declare it with a variable %q {} block.%s", name, name, didYouMean(name, sortedKeys(l.vars)))
			return false
		}
		return true
	case "local":
		if sc == scopeValidation {
			l.errorf(rng, "Invalid reference in variable validation",
				"The condition for variable %q can refer only to var.%s.", self, self)
			return false
		}
		name, ok := refName(tr)
		if !ok {
			l.errorf(rng, "Invalid reference", "A reference to a local value must name it, as in local.NAME.")
			return false
		}
		if _, declared := l.locals[name]; !declared {
			l.errorf(rng, "Reference to undeclared local value",
				"A local value with the name %q has not been declared.%s", name, didYouMean(name, sortedKeys(l.locals)))
			return false
		}
		return true
	case "service":
		if !l.serviceRefs {
			l.errorf(rng, "Invalid reference",
				"service.NAME.ATTR can be used only in a service's env, sensitive_env, command, entrypoint and labels, which berth evaluates once the referenced service is placed.")
			return false
		}
		return l.checkServiceRef(tr)
	case "node":
		l.errorf(rng, "Invalid reference",
			"node is only in scope in a placement block's constraint and spread expressions, which are evaluated on each node.")
		return false
	default:
		l.errorf(rng, "Unknown variable",
			"There is no variable named %q. References are var.NAME for input variables and local.NAME for local values.%s", root, didYouMean(root, []string{"var", "local", "service"}))
		return false
	}
}
