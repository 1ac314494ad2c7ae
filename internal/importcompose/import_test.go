package importcompose

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// cases are the Compose projects under testdata, each with its files in
// merge order and the profiles to enable.
var cases = []struct {
	dir      string
	files    []string
	profiles []string
}{
	{"basic", []string{"compose.yml"}, nil},
	{"swarm-stack", []string{"stack.yml"}, nil},
	{"interpolation", []string{"compose.yml"}, nil},
	{"multi-file", []string{"compose.yml", "compose.prod.yml"}, nil},
	{"profiles", []string{"compose.yml"}, nil},
	{"profiles-debug", []string{"../profiles/compose.yml"}, []string{"debug"}},
	{"build", []string{"compose.yml"}, nil},
	{"secrets", []string{"compose.yml"}, nil},
	{"health-update", []string{"compose.yml"}, nil},
	{"placement", []string{"compose.yml"}, nil},
}

func goldenFile(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func importCase(t *testing.T, dir string, files, profiles []string) *Result {
	t.Helper()
	base := filepath.Join("testdata", dir)
	os.MkdirAll(base, 0o755)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(base, f))
	}
	res, err := Import(context.Background(), Options{Files: paths, Profiles: profiles, OutDir: base})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Each Compose project imports to its golden HCL and warnings; the HCL
// loads and validates as a berth configuration (variables unset, as
// berth validate allows) and is already formatted; a second import gives
// the same bytes.
func TestImportGolden(t *testing.T) {
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			res := importCase(t, c.dir, c.files, c.profiles)
			var w strings.Builder
			for _, x := range res.Warnings {
				w.WriteString(filepath.ToSlash(x.String()) + "\n")
			}
			goldenFile(t, filepath.Join("testdata", c.dir, "want.hcl"), string(res.HCL))
			goldenFile(t, filepath.Join("testdata", c.dir, "want.warnings"), w.String())

			again := importCase(t, c.dir, c.files, c.profiles)
			if string(again.HCL) != string(res.HCL) {
				t.Error("a second import gave different HCL")
			}
			validateHCL(t, res.HCL)
		})
	}
}

// validateHCL loads hcl as berth validate does.
func validateHCL(t *testing.T, hcl []byte) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), hcl, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(dir, config.Inputs{AllowUnset: true})
	if diags.HasErrors() || cfg == nil {
		t.Fatalf("the imported HCL does not validate: %v\n%s", diags, hcl)
	}
	for _, d := range diags {
		t.Errorf("warning on the imported HCL: %v", d)
	}
}

// No value from .env, an env file or a secret file reaches the output,
// however the name is spelled; the variables are declared, secrets
// sensitive.
func TestImportKeepsSecretsOut(t *testing.T) {
	for _, c := range cases {
		res := importCase(t, c.dir, c.files, c.profiles)
		var w strings.Builder
		for _, x := range res.Warnings {
			w.WriteString(x.String())
		}
		for _, secret := range []string{"correct-horse-battery-staple", "tok-9f8e7d", "1.2.3", "s3cr3t-from-env-file", "file-secret-value"} {
			if strings.Contains(string(res.HCL), secret) || strings.Contains(w.String(), secret) {
				t.Errorf("%s: %q (a value from .env, an env file or a secret file) is in the output", c.dir, secret)
			}
		}
	}
	// The environment of the process is not read either.
	t.Setenv("DB_PASSWORD", "from-the-environment")
	res := importCase(t, "interpolation", []string{"compose.yml"}, nil)
	if strings.Contains(string(res.HCL), "from-the-environment") {
		t.Error("a value from the environment is in the output")
	}
	for _, want := range []string{"variable \"DB_PASSWORD\" {", "var.DB_PASSWORD", "variable \"API_TOKEN\""} {
		if !strings.Contains(string(res.HCL), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestParseTemplate(t *testing.T) {
	segs, ok := parseTemplate("a$$b${X:-d}c$Y${Z?e}")
	if !ok || len(segs) != 5 || segs[0].lit != "a$b" || segs[1].name != "X" || segs[1].def != "d" || !segs[1].hasDef ||
		segs[2].lit != "c" || segs[3].name != "Y" || segs[4].name != "Z" || segs[4].hasDef {
		t.Errorf("%+v %v", segs, ok)
	}
	if _, ok := parseTemplate("${X"); ok {
		t.Error("an unclosed ${ parsed")
	}
}
