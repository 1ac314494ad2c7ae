package config

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// readArgs reads a test case's optional args file: one input per line,
// "-var NAME=VALUE", "-var-file FILE" (relative to the case) or
// "env KEY=VALUE"; blank lines and # comments are skipped.
func readArgs(t *testing.T, dir string) Inputs {
	t.Helper()
	var in Inputs
	f, err := os.Open(filepath.Join(dir, "args"))
	if os.IsNotExist(err) {
		return in
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "-var":
			in.Args = append(in.Args, VarArg{Value: rest})
		case "-var-file":
			in.Args = append(in.Args, VarArg{File: true, Value: filepath.Join(dir, rest)})
		case "env":
			in.Environ = append(in.Environ, rest)
		case "allow-unset":
			in.AllowUnset = true
		default:
			t.Fatalf("%s/args: unknown line %q", dir, line)
		}
	}
	return in
}

// goldenLines renders diagnostics one per line as FILE:LINE: severity:
// summary, with FILE relative to dir ("-" when there is no subject).
func goldenLines(dir string, diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		where := "-"
		if d.Subject != nil {
			name := d.Subject.Filename
			if rel, err := filepath.Rel(dir, name); err == nil && !strings.HasPrefix(rel, "..") {
				name = filepath.ToSlash(rel)
			}
			where = fmt.Sprintf("%s:%d", name, d.Subject.Start.Line)
		}
		out = append(out, fmt.Sprintf("%s: %s: %s", where, sev, d.Summary))
	}
	return out
}

// cliProblem are the errors about command-line inputs, which have no place
// in a file to point at.
var cliProblem = map[string]bool{
	"Value for undeclared variable": true,
	"Invalid -var option":           true,
	"Failed to read variables file": true,
}

// TestInvalid loads every broken configuration under testdata/invalid and
// compares its diagnostics with the case's expected.txt.
func TestInvalid(t *testing.T) {
	cases, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		n++
		dir := filepath.Join("testdata", "invalid", c.Name())
		t.Run(c.Name(), func(t *testing.T) {
			_, diags := Load(dir, readArgs(t, dir))
			if !diags.HasErrors() {
				t.Errorf("no error")
			}
			for _, d := range diags {
				if d.Severity == hcl.DiagError && (d.Subject == nil || d.Subject.Filename == "") && !cliProblem[d.Summary] {
					t.Errorf("error without a source range: %s: %s", d.Summary, d.Detail)
				}
				if d.Summary == "Internal error" {
					t.Errorf("%s", d.Detail)
				}
			}
			got := strings.Join(goldenLines(dir, diags), "\n") + "\n"
			golden := filepath.Join(dir, "expected.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s\nall:\n%s", diff, renderAll(diags))
			}
		})
	}
	if n < 40 {
		t.Errorf("only %d invalid cases; the issue asks for at least 40", n)
	}
}

func renderAll(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "  %s: %s\n", d.Summary, d.Detail)
	}
	return b.String()
}

// TestExamples loads every example directory; each must be valid, without
// inputs (variables that need secrets are then unknown) and, when it ships
// var files, with each of them and the secrets set.
func TestExamples(t *testing.T) {
	dirs, err := filepath.Glob("../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 3 {
		t.Fatalf("found %d examples, want at least 3", len(dirs))
	}
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, diags := Load(dir, Inputs{AllowUnset: true})
			if len(diags) > 0 {
				t.Fatalf("diagnostics:\n%s", renderAll(diags))
			}
			if len(cfg.Nodes) == 0 || len(cfg.Services) == 0 {
				t.Errorf("example has %d nodes and %d services", len(cfg.Nodes), len(cfg.Services))
			}
			varFiles, _ := filepath.Glob(filepath.Join(dir, "*"+VarFileSuffix))
			for _, vf := range varFiles {
				in := Inputs{Args: []VarArg{{File: true, Value: vf}}}
				for _, v := range cfg.Variables {
					if v.Source == "" {
						in.Environ = append(in.Environ, EnvVarPrefix+v.Name+"=example-secret-"+v.Name)
					}
				}
				if _, diags := Load(dir, in); len(diags) > 0 {
					t.Errorf("with -var-file %s:\n%s", vf, renderAll(diags))
				}
			}
		})
	}
}
