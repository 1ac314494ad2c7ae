// Package importcompose turns Compose and Swarm stack files into a berth
// configuration (HCL). It reads the files with the Compose specification's
// own library (compose-go: multiple files merged, profiles, extends), with
// interpolation off: a ${NAME} becomes an HCL variable used as var.NAME,
// never the value it has in .env or the environment, since the HCL goes
// into git and a Compose project's .env often holds passwords. Everything
// the importer does not carry over is a Warning naming the file, line and
// key; nothing is dropped silently.
//
// It owns no I/O beyond reading the Compose files, their .env and env
// files (names only); cmd/berth writes the result.
package importcompose

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/transform"
	"github.com/compose-spec/compose-go/v2/types"
)

// Options say what to import.
type Options struct {
	// Files are the Compose files, merged in order (later ones override).
	Files []string
	// Profiles to enable; services of other profiles are left out.
	Profiles []string
	// OutDir is where the HCL will be written: relative paths (a build
	// context) are made relative to it.
	OutDir string
}

// Warning is something the importer did not carry over, or carried over
// differently.
type Warning struct {
	File    string // as given in Options.Files
	Line    int    // 0 when the key was not found in any file
	Key     string // "services.web.deploy.rollback_config"
	Message string
}

func (w Warning) String() string {
	loc := w.File
	if w.Line > 0 {
		loc += ":" + strconv.Itoa(w.Line)
	}
	return fmt.Sprintf("%s: %s: %s", loc, w.Key, w.Message)
}

// Result is the generated configuration.
type Result struct {
	// HCL is the configuration, formatted (berth fmt leaves it as is).
	HCL []byte
	// Warnings in file, line and key order.
	Warnings []Warning
}

// marker stands for an interpolation inside a string while compose-go
// loads the model: "__berthvar3__" is the fourth interpolation found.
var markerRE = regexp.MustCompile(`__berthvar([0-9]+)__`)

func marker(i int) string { return "__berthvar" + strconv.Itoa(i) + "__" }

// importer is one import.
type importer struct {
	opts    Options
	loc     *locator
	workDir string

	interps []segment                  // by marker number
	typed   map[string]segment         // path -> interpolation of a non-string field
	vars    map[string]*variable       // by name
	dotenv  map[string]bool            // names set in .env
	warns   []Warning                  // in the order found
	raw     map[string]any             // the merged model, as written
	labels  map[string]map[string]bool // node label key -> values used by constraints
	hosts   map[string]bool            // node.hostname values
	spreads map[string]bool            // label keys used by spread
	// minNodes is how many placeholder nodes the services need: a
	// replica that publishes a host port, or one past max_per_node,
	// needs a node of its own.
	minNodes int
}

type variable struct {
	name      string
	typ       string // "string" or "number"
	def       *string
	sensitive bool
	from      []string // where it is used, for the description
}

var secretName = regexp.MustCompile(`(?i)PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL`)

// Import reads the Compose files and returns the HCL.
func Import(ctx context.Context, opts Options) (*Result, error) {
	if len(opts.Files) == 0 {
		return nil, fmt.Errorf("no Compose file given")
	}
	if opts.OutDir == "" {
		opts.OutDir = "."
	}
	im := &importer{opts: opts, typed: map[string]segment{}, vars: map[string]*variable{}, dotenv: map[string]bool{},
		labels: map[string]map[string]bool{}, hosts: map[string]bool{}, spreads: map[string]bool{}}
	loc, err := newLocator(opts.Files)
	if err != nil {
		return nil, err
	}
	im.loc = loc
	details, err := loader.LoadConfigFiles(ctx, opts.Files, filepath.Dir(opts.Files[0]))
	if err != nil {
		return nil, err
	}
	if details.WorkingDir, err = filepath.Abs(details.WorkingDir); err != nil {
		return nil, err
	}
	im.workDir = details.WorkingDir
	// No environment at all: nothing from the process or .env may reach
	// the output. .env is read for its names only.
	details.Environment = types.Mapping{}
	im.readDotEnv(filepath.Join(im.workDir, ".env"))
	optFns := []func(*loader.Options){func(o *loader.Options) {
		o.SkipInterpolation = true
		o.SkipValidation = true
		o.SkipResolveEnvironment = true
		o.SkipResolveLabels = true
		o.ResolvePaths = false
		o.SkipConsistencyCheck = true
		o.Profiles = opts.Profiles
	}}
	dict, err := loader.LoadModelWithContext(ctx, *details, optFns...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", strings.Join(opts.Files, ", "), err)
	}
	name, _ := dict["name"].(string)
	im.raw = deepCopy(dict).(map[string]any)
	im.replaceInterpolations(dict, nil)
	// compose-go leaves short forms it could not parse while an
	// interpolation was in them (ports "${PORT:-80}:80"): parse them now.
	if dict, err = transform.Canonical(dict, false); err != nil {
		return nil, fmt.Errorf("read %s: %w", strings.Join(opts.Files, ", "), err)
	}
	o := loader.ToOptions(details, optFns)
	project, err := loader.ModelToProject(dict, o, *details)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", strings.Join(opts.Files, ", "), err)
	}
	// Warnings about services a profile left out do not count.
	im.warns = slices.DeleteFunc(im.warns, func(w Warning) bool {
		rest, ok := strings.CutPrefix(w.Key, "services.")
		if !ok {
			return false
		}
		svc, _, _ := strings.Cut(rest, ".")
		svc, _, _ = strings.Cut(svc, "[")
		_, active := project.Services[svc]
		return !active
	})
	if name == "" {
		name = filepath.Base(im.workDir)
	}
	if strings.Contains(name, "__berthvar") {
		im.warn("name", "the project name is interpolated; the directory's name is used")
		name = filepath.Base(im.workDir)
	}
	hcl, err := im.write(projectName(name), project)
	if err != nil {
		return nil, err
	}
	im.checkKeys(project)
	if !bytes.HasSuffix(hcl, []byte("\n")) {
		hcl = append(hcl, '\n')
	}
	return &Result{HCL: hcl, Warnings: im.sortedWarnings()}, nil
}

// projectName makes name a berth name: lower case, [a-z0-9_-].
func projectName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.TrimLeft(b.String(), "-_")
	if s == "" {
		s = "imported"
	}
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// readDotEnv notes the names .env sets; its values are never read into
// the output.
func (im *importer) readDotEnv(path string) {
	for _, n := range envFileNames(path) {
		im.dotenv[n] = true
	}
}

// envFileNames lists the variable names an env file sets (KEY=value
// lines, "export " allowed), without their values.
func envFileNames(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		l = strings.TrimPrefix(l, "export ")
		k, _, _ := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if k != "" && isNameStart(k[0]) && !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	return names
}

// stringPaths are the paths whose strings the importer keeps as strings,
// so an interpolation in them can stay a variable ("*" any key, "[]" any
// list item). Elsewhere a value is parsed (a number, a duration, a port),
// and an interpolation is replaced by its default.
var stringPaths = []string{
	"services.*.image", "services.*.environment.*", "services.*.environment.[]",
	"services.*.labels.*", "services.*.labels.[]", "services.*.command", "services.*.command.[]",
	"services.*.entrypoint", "services.*.entrypoint.[]", "services.*.user", "services.*.working_dir",
	"services.*.hostname", "services.*.extra_hosts.[]", "services.*.extra_hosts.*",
	"services.*.build.args.*", "services.*.build.args.[]", "services.*.build.target",
	"services.*.healthcheck.test", "services.*.healthcheck.test.[]",
	"services.*.deploy.placement.constraints.[]",
	"services.*.volumes.[].source",
}

func matchPath(pattern string, path []string) bool {
	ps := strings.Split(pattern, ".")
	if len(ps) != len(path) {
		return false
	}
	for i, p := range ps {
		switch {
		case p == "*" && !strings.HasPrefix(path[i], "["):
		case p == "[]" && strings.HasPrefix(path[i], "["):
		case p == path[i]:
		default:
			return false
		}
	}
	return true
}

func keyOf(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// replaceInterpolations walks the model: in string fields an interpolation
// becomes a marker; in parsed fields a value that is one interpolation
// becomes its default (remembered by path, so replicas can still be a
// variable); "$$" becomes "$" everywhere.
func (im *importer) replaceInterpolations(v any, path []string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = im.replaceInterpolations(e, append(slices.Clone(path), k))
		}
	case []any:
		for i, e := range x {
			x[i] = im.replaceInterpolations(e, append(slices.Clone(path), "["+strconv.Itoa(i)+"]"))
		}
	case string:
		segs, ok := parseTemplate(x)
		if !ok {
			im.warn(keyOf(path), fmt.Sprintf("malformed interpolation in %q: kept as written", x))
			return x
		}
		if !hasVars(segs) {
			return joinLits(segs)
		}
		if slices.ContainsFunc(stringPaths, func(p string) bool { return matchPath(p, path) }) {
			var b strings.Builder
			for _, s := range segs {
				if s.name == "" {
					b.WriteString(s.lit)
					continue
				}
				if s.op != "" {
					im.warn(keyOf(path), fmt.Sprintf("${%s%s...} is not carried over: imported as var.%s", s.name, s.op, s.name))
				}
				b.WriteString(marker(len(im.interps)))
				im.interps = append(im.interps, s)
			}
			return b.String()
		}
		key := keyOf(path)
		if len(segs) == 1 && segs[0].name != "" {
			s := segs[0]
			im.typed[key] = s
			if matchPath("services.*.deploy.replicas", path) {
				if s.hasDef {
					return s.def
				}
				return "1"
			}
			if s.hasDef {
				im.warn(key, fmt.Sprintf("${%s} is imported as its default %q: berth takes no variable here", s.name, s.def))
				return s.def
			}
		}
		var b strings.Builder
		for _, s := range segs {
			if s.name == "" {
				b.WriteString(s.lit)
			} else if s.hasDef {
				b.WriteString(s.def)
			} else {
				im.warn(key, fmt.Sprintf("${%s} has no default and berth takes no variable here: set the value in the generated HCL", s.name))
				return joinLits(segs)
			}
		}
		im.warn(key, fmt.Sprintf("%q is imported with its defaults as %q: berth takes no variable here", x, b.String()))
		return b.String()
	}
	return v
}

func joinLits(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.lit)
	}
	return b.String()
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// warn records a warning at key (a dotted path), located in the files.
func (im *importer) warn(key, msg string) {
	file, line := im.loc.find(key)
	im.warns = append(im.warns, Warning{File: file, Line: line, Key: key, Message: msg})
}

func (im *importer) sortedWarnings() []Warning {
	w := slices.Clone(im.warns)
	fileIdx := func(f string) int { return slices.Index(im.opts.Files, f) }
	slices.SortStableFunc(w, func(a, b Warning) int {
		if c := fileIdx(a.File) - fileIdx(b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Key, b.Key)
	})
	return slices.CompactFunc(w, func(a, b Warning) bool { return a == b })
}

// declare records a variable used at where.
func (im *importer) declare(name, typ string, def *string, sensitive bool, where string) string {
	v := im.vars[name]
	if v == nil {
		v = &variable{name: name, typ: typ}
		im.vars[name] = v
	}
	if v.def == nil && def != nil {
		v.def = def
	}
	if sensitive || secretName.MatchString(name) {
		v.sensitive = true
	}
	if !slices.Contains(v.from, where) {
		v.from = append(v.from, where)
	}
	return "var." + name
}

// fmtDuration writes a Compose duration as berth reads it.
func fmtDuration(d types.Duration) string { return time.Duration(d).String() }

func fmtSize(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}
