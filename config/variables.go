package config

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// EnvVarPrefix is the environment variable prefix that sets input
// variables: BERTH_VAR_name=value sets var.name.
const EnvVarPrefix = "BERTH_VAR_"

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"},
		{Name: "default"},
		{Name: "description"},
		{Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true},
		{Name: "error_message", Required: true},
	},
}

// varDecl is a declared variable while loading.
type varDecl struct {
	v        *Variable
	typ      cty.Type
	defaults *typeexpr.Defaults
	// literal: -var and BERTH_VAR_ values are taken as raw strings rather
	// than parsed as HCL (string and untyped variables, as in Terraform).
	literal bool

	value   cty.Value  // converted and unmarked; cty.NilVal while there is none
	from    *hcl.Range // where the value was written (default, var file), if anywhere
	failed  bool       // a value was given but was unusable: unknown downstream
	badType bool       // the type constraint is invalid: every value is unknown
	checked []validationRule
}

type validationRule struct {
	condition, message hcl.Expression
	rng                hcl.Range
}

// exprValue is var.NAME in expressions: marked when sensitive, unknown when
// the value is missing or was bad (its errors are already reported).
func (d *varDecl) exprValue() cty.Value {
	if d.failed || d.badType || d.value == cty.NilVal {
		return cty.UnknownVal(d.typ)
	}
	v := d.value
	if d.v.Sensitive {
		v = v.Mark(sensitiveMark)
	}
	return v
}

// declareVariables decodes the variable blocks and their defaults.
func (l *loader) declareVariables(blocks hcl.Blocks) {
	for _, b := range blocks {
		name := b.Labels[0]
		rng := b.DefRange
		if !hclsyntax.ValidIdentifier(name) {
			l.errorf(b.LabelRanges[0], "Invalid variable name",
				"%q is not a valid variable name: a name starts with a letter and contains letters, digits, '_' and '-'.", name)
			continue
		}
		if prev, dup := l.vars[name]; dup {
			l.duplicatef(rng, prev.v.DeclRange, "Duplicate variable declaration", "A variable named %q was already declared.", name)
			continue
		}
		d := &varDecl{
			v:       &Variable{Name: name, DeclRange: rng},
			typ:     cty.DynamicPseudoType,
			literal: true,
		}
		l.vars[name] = d
		l.cfg.Variables = append(l.cfg.Variables, d.v)

		content, diags := b.Body.Content(variableSchema)
		l.diags = append(l.diags, diags...)
		if content == nil {
			d.failed = true
			continue
		}
		if a, ok := content.Attributes["type"]; ok {
			ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
			l.diags = append(l.diags, diags...)
			if diags.HasErrors() {
				d.failed, d.badType = true, true
			} else {
				d.typ, d.defaults = ty, defaults
				d.literal = ty == cty.String
			}
		}
		d.v.Type = d.typ
		if a, ok := content.Attributes["description"]; ok {
			v, diags := a.Expr.Value(nil)
			l.diags = append(l.diags, diags...)
			if !diags.HasErrors() {
				if s, err := convert.Convert(v, cty.String); err != nil || s.IsNull() || !s.IsKnown() {
					l.errorf(a.Expr.Range(), "Invalid description", "A variable's description must be a string.")
				} else {
					d.v.Description = s.AsString()
				}
			}
		}
		if a, ok := content.Attributes["sensitive"]; ok {
			v, diags := a.Expr.Value(nil)
			l.diags = append(l.diags, diags...)
			if !diags.HasErrors() {
				if bv, err := convert.Convert(v, cty.Bool); err != nil || bv.IsNull() || !bv.IsKnown() {
					l.errorf(a.Expr.Range(), "Invalid sensitive", "sensitive must be true or false.")
				} else {
					d.v.Sensitive = bv.True()
				}
			}
		}
		if a, ok := content.Attributes["default"]; ok {
			v, diags := a.Expr.Value(nil)
			l.diags = append(l.diags, diags...)
			if diags.HasErrors() {
				d.failed = true
			} else {
				r := a.Expr.Range()
				l.setVariable(d, v, "default", &r)
			}
		}
		for _, vb := range content.Blocks {
			vc, diags := vb.Body.Content(validationSchema)
			l.diags = append(l.diags, diags...)
			if vc == nil || vc.Attributes["condition"] == nil || vc.Attributes["error_message"] == nil {
				continue
			}
			cond, msg := vc.Attributes["condition"].Expr, vc.Attributes["error_message"].Expr
			okRefs := l.checkRefs(cond, scopeValidation, name)
			okRefs = l.checkRefs(msg, scopeValidation, name) && okRefs
			if !okRefs {
				continue
			}
			d.checked = append(d.checked, validationRule{condition: cond, message: msg, rng: vb.DefRange})
		}
	}
	slices.SortStableFunc(l.cfg.Variables, func(a, b *Variable) int { return strings.Compare(a.Name, b.Name) })
}

// setVariable converts a value for d from one source; later calls win. from
// is the value's source range when it was written in a file.
func (l *loader) setVariable(d *varDecl, v cty.Value, source string, from *hcl.Range) {
	if d.badType {
		return
	}
	if v.IsKnown() && !v.IsNull() && d.defaults != nil {
		v = d.defaults.Apply(v)
	}
	cv, err := convert.Convert(v, d.typ)
	if err == nil && !cv.IsWhollyKnown() {
		err = fmt.Errorf("the value must be known")
	}
	if err != nil {
		// Never point a snippet at a sensitive value's source.
		subject := d.v.DeclRange
		if from != nil && !d.v.Sensitive {
			subject = *from
		}
		l.errorf(subject, "Invalid value for input variable",
			"The value for var.%s from %s is not suitable: %s.", d.v.Name, source, convertErr(err))
		d.failed = true
		return
	}
	d.value, d.from, d.failed = cv, from, false
	d.v.Source = source
}

// resolveVariables applies the inputs over the defaults, in order of
// precedence: default < BERTH_VAR_name < -var and -var-file in command-line
// order (later wins). Then it checks required values and validation rules.
func (l *loader) resolveVariables() {
	for _, kv := range l.in.Environ {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvVarPrefix) {
			continue
		}
		name := strings.TrimPrefix(k, EnvVarPrefix)
		d, declared := l.vars[name]
		if !declared {
			continue // the environment is shared; Terraform ignores these too
		}
		l.setFromString(d, val, "env "+k)
	}
	for _, arg := range l.in.Args {
		if arg.File {
			l.readVarFile(arg.Value)
			continue
		}
		name, val, ok := strings.Cut(arg.Value, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid -var option",
				Detail:   fmt.Sprintf("The given -var option %q is not correctly specified. It must be a variable name and a value separated by an equals sign, like -var name=value.", redactArg(arg.Value)),
			})
			continue
		}
		d, declared := l.vars[name]
		if !declared {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("A variable named %q was assigned on the command line, but the configuration does not declare it. Declare it with a variable %q {} block.%s", name, name, didYouMean(name, sortedKeys(l.vars))),
			})
			continue
		}
		l.setFromString(d, val, "-var")
	}

	for _, name := range sortedKeys(l.vars) {
		d := l.vars[name]
		if d.value == cty.NilVal && !d.failed {
			if l.in.AllowUnset {
				continue // unknown: the checks that need it are skipped
			}
			l.errorf(d.v.DeclRange, "No value for required variable",
				"The variable %q has no default, so it must be set with -var, -var-file or %s%s.", name, EnvVarPrefix, name)
			d.failed = true
		}
		if d.v.Sensitive && d.value != cty.NilVal {
			l.collectSensitive(d.value.Mark(sensitiveMark), false)
		}
		d.v.Value = d.value
	}
	for _, name := range sortedKeys(l.vars) {
		l.validateVariable(l.vars[name])
	}
}

// redactArg hides the value of a -var argument.
func redactArg(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// setFromString sets a variable from a -var or BERTH_VAR_ string: raw for
// string and untyped variables, parsed as an HCL expression otherwise.
func (l *loader) setFromString(d *varDecl, s, source string) {
	if d.literal {
		l.setVariable(d, cty.StringVal(s), source, nil)
		return
	}
	filename := fmt.Sprintf("<value for var.%s>", d.v.Name)
	if nd := CheckNesting([]byte(s), filename, true); nd != nil {
		l.errorf(d.v.DeclRange, "Invalid value for input variable",
			"The value for var.%s from %s nests more than %d levels deep.", d.v.Name, source, MaxNesting)
		d.failed = true
		return
	}
	expr, diags := hclsyntax.ParseExpression([]byte(s), filename, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		l.errorf(d.v.DeclRange, "Invalid value for input variable",
			"The value for var.%s from %s is not a valid expression for type %s: %s.", d.v.Name, source, typeexpr.TypeString(d.typ), firstDetail(diags, d.v.Sensitive))
		d.failed = true
		return
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		l.errorf(d.v.DeclRange, "Invalid value for input variable",
			"The value for var.%s from %s must be a constant: %s.", d.v.Name, source, firstDetail(diags, d.v.Sensitive))
		d.failed = true
		return
	}
	l.setVariable(d, v, source, nil)
}

// firstDetail is the first error's summary, for folding a parse error into
// another diagnostic.
func firstDetail(diags hcl.Diagnostics, sensitive bool) string {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			s := strings.TrimSuffix(d.Summary, ".")
			if !sensitive && d.Detail != "" {
				s += " (" + strings.TrimSuffix(d.Detail, ".") + ")"
			}
			return s
		}
	}
	return "invalid"
}

// readVarFile applies a -var-file: HCL attributes NAME = VALUE, constants only.
func (l *loader) readVarFile(path string) {
	src, err := os.ReadFile(path)
	if err != nil {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Failed to read variables file",
			Detail:   fmt.Sprintf("Cannot read %s: %v.", path, unwrapPathError(err)),
		})
		return
	}
	if d := CheckNesting(src, path, false); d != nil {
		l.diags = append(l.diags, d)
		return
	}
	f, diags := l.parser.ParseHCL(src, path)
	l.diags = append(l.diags, diags...)
	if f == nil || f.Body == nil || diags.HasErrors() {
		return
	}
	attrs, diags := f.Body.JustAttributes()
	l.diags = append(l.diags, diags...)
	for _, a := range inSourceOrder(attrs) {
		d, declared := l.vars[a.Name]
		if !declared {
			l.warnf(a.NameRange, "Value for undeclared variable",
				"The variables file sets %q, but the configuration does not declare a variable of that name.%s", a.Name, didYouMean(a.Name, sortedKeys(l.vars)))
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			if d.v.Sensitive {
				// The snippet would show the secret: say what, not where.
				l.errorf(d.v.DeclRange, "Invalid value for input variable",
					"The value for var.%s in %s must be a constant.", a.Name, path)
			} else {
				l.diags = append(l.diags, diags...)
			}
			d.failed = true
			continue
		}
		r := a.Expr.Range()
		l.setVariable(d, v, "var-file "+path, &r)
	}
}

// validateVariable checks a variable's validation rules against its value.
func (l *loader) validateVariable(d *varDecl) {
	if d.failed || d.value == cty.NilVal || len(d.checked) == 0 {
		return
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{d.v.Name: d.exprValue()})},
		Functions: Functions(),
	}
	for _, rule := range d.checked {
		v, diags := rule.condition.Value(ctx)
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		v, _ = v.UnmarkDeep()
		if !v.IsKnown() {
			continue
		}
		bv, err := convert.Convert(v, cty.Bool)
		if err != nil || bv.IsNull() {
			l.errorf(rule.condition.Range(), "Invalid validation condition", "The condition for var.%s must be true or false.", d.v.Name)
			continue
		}
		if bv.True() {
			continue
		}
		msg := l.validationMessage(rule, ctx)
		subject := rule.condition.Range()
		if d.from != nil && !d.v.Sensitive {
			subject = *d.from
		}
		l.errorf(subject, "Invalid value for variable",
			"%s\n\nThe value for var.%s comes from %s; it was checked by the validation rule at %s.", msg, d.v.Name, d.v.Source, rangeString(rule.rng))
	}
}

func (l *loader) validationMessage(rule validationRule, ctx *hcl.EvalContext) string {
	const fallback = "The value does not satisfy the validation rule."
	v, diags := rule.message.Value(ctx)
	if diags.HasErrors() {
		l.diags = append(l.diags, diags...)
		return fallback
	}
	if v.ContainsMarked() {
		return "The error message cannot be shown: it includes a sensitive value."
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		l.errorf(rule.message.Range(), "Invalid error_message", "error_message must be a string.")
		return fallback
	}
	return strings.TrimSpace(s.AsString())
}
