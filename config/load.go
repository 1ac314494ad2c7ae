package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// VarArg is one -var or -var-file flag, kept in command-line order because
// later flags win (Terraform's rule).
type VarArg struct {
	File  bool   // true: -var-file PATH; false: -var NAME=VALUE
	Value string // "NAME=VALUE" or the file path
}

// Inputs are the values supplied from outside the configuration.
type Inputs struct {
	Args []VarArg
	// Environ is os.Environ()-style "KEY=value"; BERTH_VAR_name sets var.name.
	Environ []string
	// AllowUnset makes a variable that has no default and no value unknown
	// instead of an error, and skips the checks that depend on it. berth
	// validate sets it so that CI can validate without secrets (Terraform's
	// validate does the same); the Config is then fit only for validation.
	AllowUnset bool
}

// VarFileSuffix marks variable files: they sit next to the configuration but
// are read only when named by -var-file.
const VarFileSuffix = ".vars.hcl"

// IsConfigFile reports whether a file name is read as configuration: *.hcl,
// but not *.vars.hcl nor editor and hidden files (".x.hcl", "#x.hcl#", "x.hcl~").
func IsConfigFile(name string) bool {
	return strings.HasSuffix(name, ".hcl") && !strings.HasSuffix(name, VarFileSuffix) &&
		!strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "#")
}

// recoverPanics turns a panic in Load into a diagnostic; FuzzLoad turns it
// off to see the stack.
var recoverPanics = true

// loader holds the state of one Load.
type loader struct {
	dir    string
	in     Inputs
	parser *hclparse.Parser
	diags  hcl.Diagnostics
	cfg    *Config

	vars      map[string]*varDecl
	locals    map[string]*hcl.Attribute
	ctx       *hcl.EvalContext
	sensitive map[string]struct{}

	projectBody hcl.Body
	svcExtra    map[*Service]*svcExtra
	// serviceNames are the declared services; serviceRefs is set while
	// decoding the attributes where service.NAME.ATTR is allowed.
	serviceNames map[string]bool
	serviceRefs  bool
	required     map[*hcl.Attribute]bool // see require
}

// Load reads every configuration file in dir (*.hcl except *.vars.hcl) and
// returns the resolved configuration with every problem found.
//
// Diagnostics include warnings. The Config is nil only when the directory
// cannot be read or holds no configuration file; otherwise it is returned
// even with errors (with Files set, for rendering diagnostics), but is
// meaningful only when diags.HasErrors() is false.
func Load(dir string, in Inputs) (cfg *Config, diags hcl.Diagnostics) {
	l := &loader{
		dir:       dir,
		in:        in,
		parser:    hclparse.NewParser(),
		vars:      map[string]*varDecl{},
		locals:    map[string]*hcl.Attribute{},
		sensitive: map[string]struct{}{},
		required:  map[*hcl.Attribute]bool{},
	}
	defer func() {
		// Never a panic or a Go stack trace, whatever the input: turn a
		// bug into a diagnostic. FuzzLoad keeps this path unused.
		if !recoverPanics {
			return
		}
		if r := recover(); r != nil {
			diags = append(l.finish(), &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Internal error",
				Detail:   fmt.Sprintf("berth failed while reading the configuration (%v). This is a bug in berth; please report it with the configuration that caused it.", r),
			})
			cfg = l.cfg
		}
	}()
	names, err := configFiles(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read configuration directory",
			Detail:   fmt.Sprintf("Cannot read %s: %v.", dir, unwrapPathError(err)),
		}}
	}
	if len(names) == 0 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail:   fmt.Sprintf("berth reads every *.hcl file in a directory (except *%s variable files), and %s has none.", VarFileSuffix, dir),
		}}
	}
	l.cfg = &Config{Dir: dir}
	l.load(names)
	return l.cfg, l.finish()
}

// configFiles lists the configuration files in dir, sorted.
func configFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !IsConfigFile(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		names = append(names, path)
	}
	slices.Sort(names)
	return names, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// topSchema is the configuration's top level.
var topSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "project", LabelNames: []string{"name"}},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "node", LabelNames: []string{"name"}},
		{Type: "service", LabelNames: []string{"name"}},
	},
}

// load runs every step; each step reports its own problems and carries on.
func (l *loader) load(paths []string) {
	var blocks hcl.Blocks
	for _, path := range paths {
		if src, err := os.ReadFile(path); err == nil {
			if d := CheckNesting(src, path, false); d != nil {
				l.diags = append(l.diags, d)
				continue
			}
		}
		f, diags := l.parser.ParseHCLFile(path)
		l.diags = append(l.diags, diags...)
		if f == nil || f.Body == nil {
			continue
		}
		content, diags := f.Body.Content(topSchema)
		l.diags = append(l.diags, diags...)
		if content != nil {
			blocks = append(blocks, content.Blocks...)
		}
	}
	byType := map[string]hcl.Blocks{}
	for _, b := range blocks {
		byType[b.Type] = append(byType[b.Type], b)
	}

	l.decodeProject(byType["project"])
	l.declareVariables(byType["variable"])
	l.declareLocals(byType["locals"])
	l.resolveVariables()
	l.evalLocals()
	l.decodeProjectSSH()
	l.decodeNodes(byType["node"])
	l.decodeServices(byType["service"])
	l.checkServices()
	l.checkSwarm()
}

// varObject is `var` in expressions.
func (l *loader) varObject() cty.Value {
	vals := map[string]cty.Value{}
	for name, d := range l.vars {
		vals[name] = d.exprValue()
	}
	return cty.ObjectVal(vals)
}

// finish sorts and cleans the diagnostics and fills in the last fields.
func (l *loader) finish() hcl.Diagnostics {
	if l.cfg != nil {
		l.cfg.Files = l.parser.Files()
		l.cfg.SensitiveValues = sortedKeys(l.sensitive)
	}
	diags := l.diags
	for _, d := range diags {
		repairSubject(d)
		scrubDiagnostic(d, l.cfg)
	}
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
	// The same problem can be found twice (a local used by two services):
	// keep one.
	out := diags[:0]
	seen := map[string]bool{}
	for _, d := range diags {
		key := fmt.Sprintf("%d|%s|%s|%v", d.Severity, d.Summary, d.Detail, d.Subject)
		if d.Subject != nil {
			key = fmt.Sprintf("%d|%s|%s|%s", d.Severity, d.Summary, d.Detail, d.Subject.String())
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, d)
	}
	return out
}

// repairSubject gives a diagnostic whose subject has no file name (HCL's
// recovery from a syntax error can leave such ranges in the partial syntax
// tree, e.g. the closing parenthesis of "f(" at the end of a file) the
// enclosing range instead.
func repairSubject(d *hcl.Diagnostic) {
	if d.Subject == nil || d.Subject.Filename != "" {
		return
	}
	switch {
	case d.Context != nil && d.Context.Filename != "":
		r := *d.Context
		d.Subject = &r
	case d.Expression != nil && d.Expression.Range().Filename != "":
		r := d.Expression.Range()
		d.Subject = &r
	}
}

// scrubDiagnostic makes sure a diagnostic shows no sensitive value: it drops
// the expression context when any value it would print is marked, and
// redacts sensitive strings that made it into the text.
func scrubDiagnostic(d *hcl.Diagnostic, cfg *Config) {
	if d.Expression != nil && d.EvalContext != nil {
		for _, tr := range d.Expression.Variables() {
			v, diags := tr.TraverseAbs(d.EvalContext)
			if !diags.HasErrors() && v.ContainsMarked() {
				// HCL's and go-cty's messages may quote a value derived from
				// the secret (parseint: cannot parse "..."): keep only the
				// part before the first colon.
				d.Expression, d.EvalContext = nil, nil
				if i := strings.Index(d.Detail, ": "); i >= 0 {
					d.Detail = d.Detail[:i] + ": (details hidden: the expression uses a sensitive value)."
				}
				break
			}
		}
	}
	if cfg == nil {
		return
	}
	for _, s := range cfg.SensitiveValues {
		if len(s) < 3 {
			continue
		}
		d.Summary = strings.ReplaceAll(d.Summary, s, "(sensitive value)")
		d.Detail = strings.ReplaceAll(d.Detail, s, "(sensitive value)")
	}
}
