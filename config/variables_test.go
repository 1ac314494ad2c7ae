package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// writeConfig writes files into a new temporary directory.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// precedenceConfig uses var.x in a service's image tag so that the test can
// see the resolved value end to end.
const precedenceConfig = `
variable "x" {
  type    = string
  default = "from-default"
}

node "n1" {
  address = "local"
}

service "web" {
  image = "nginx:${var.x}"
}
`

func loadX(t *testing.T, dir string, in Inputs) (string, string) {
	t.Helper()
	cfg, diags := Load(dir, in)
	if diags.HasErrors() {
		t.Fatalf("diagnostics:\n%s", renderAll(diags))
	}
	tag := strings.TrimPrefix(cfg.Service("web").Image, "nginx:")
	return tag, cfg.Variables[0].Source
}

func TestVariablePrecedence(t *testing.T) {
	dir := writeConfig(t, map[string]string{
		"main.hcl":    precedenceConfig,
		"a.vars.hcl":  `x = "from-file-a"`,
		"b.vars.hcl":  `x = "from-file-b"`,
		"other.hcl~":  `garbage`,
		".hidden.hcl": `garbage`,
	})
	a, b := filepath.Join(dir, "a.vars.hcl"), filepath.Join(dir, "b.vars.hcl")
	env := []string{"BERTH_VAR_x=from-env", "PATH=/bin"}
	varArg := func(v string) VarArg { return VarArg{Value: "x=" + v} }
	fileArg := func(p string) VarArg { return VarArg{File: true, Value: p} }

	tests := []struct {
		name       string
		in         Inputs
		want, from string
	}{
		{"default", Inputs{}, "from-default", "default"},
		{"env over default", Inputs{Environ: env}, "from-env", "env BERTH_VAR_x"},
		{"var-file over env", Inputs{Environ: env, Args: []VarArg{fileArg(a)}}, "from-file-a", "var-file " + a},
		{"-var over env", Inputs{Environ: env, Args: []VarArg{varArg("from-cli")}}, "from-cli", "-var"},
		{"-var after var-file wins", Inputs{Environ: env, Args: []VarArg{fileArg(a), varArg("from-cli")}}, "from-cli", "-var"},
		{"var-file after -var wins", Inputs{Environ: env, Args: []VarArg{varArg("from-cli"), fileArg(a)}}, "from-file-a", "var-file " + a},
		{"later var-file wins", Inputs{Args: []VarArg{fileArg(a), fileArg(b)}}, "from-file-b", "var-file " + b},
		{"later -var wins", Inputs{Args: []VarArg{varArg("one"), varArg("two")}}, "two", "-var"},
		{"later env entry wins", Inputs{Environ: []string{"BERTH_VAR_x=first", "BERTH_VAR_x=second"}}, "second", "env BERTH_VAR_x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, from := loadX(t, dir, tt.in)
			if got != tt.want || from != tt.from {
				t.Errorf("var.x = %q from %q, want %q from %q", got, from, tt.want, tt.from)
			}
		})
	}
}

func TestVariableParsing(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": `
variable "s" {
  type = string
}
variable "n" {
  type = number
}
variable "l" {
  type = list(string)
}
variable "o" {
  type = object({ a = string, b = optional(number, 7) })
}
variable "untyped" {}
`})
	cfg, diags := Load(dir, Inputs{
		Environ: []string{"BERTH_VAR_n=3", `BERTH_VAR_l=["a", "b"]`},
		Args: []VarArg{
			{Value: `s=[1, 2]`}, // a string variable takes the raw text
			{Value: `o={ a = "x" }`},
			{Value: `untyped=[x]`},
		},
	})
	if diags.HasErrors() {
		t.Fatalf("diagnostics:\n%s", renderAll(diags))
	}
	want := map[string]cty.Value{
		"s":       cty.StringVal("[1, 2]"),
		"n":       cty.NumberIntVal(3),
		"l":       cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
		"o":       cty.ObjectVal(map[string]cty.Value{"a": cty.StringVal("x"), "b": cty.NumberIntVal(7)}),
		"untyped": cty.StringVal("[x]"),
	}
	for _, v := range cfg.Variables {
		if !v.Value.RawEquals(want[v.Name]) {
			t.Errorf("var.%s = %#v, want %#v", v.Name, v.Value, want[v.Name])
		}
	}
}

func TestRequiredVariable(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": `
variable "password" {
  type      = string
  sensitive = true
}
node "n1" {
  address = "local"
}
service "db" {
  image = "postgres"
  env = {
    PASSWORD = var.password
  }
}
`})
	_, diags := Load(dir, Inputs{})
	if got := goldenLines(dir, diags); len(got) != 1 || got[0] != "main.hcl:2: error: No value for required variable" {
		t.Errorf("without a value: %q", got)
	}
	// validate's mode: unknown, nothing reported.
	cfg, diags := Load(dir, Inputs{AllowUnset: true})
	if len(diags) != 0 {
		t.Errorf("AllowUnset: %s", renderAll(diags))
	}
	if cfg.Variables[0].Source != "" || cfg.Variables[0].Value != cty.NilVal {
		t.Errorf("unset variable: %+v", cfg.Variables[0])
	}
	if _, ok := cfg.Service("db").Env["PASSWORD"]; ok {
		t.Errorf("an unknown env value was set")
	}
}

func TestSensitive(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": `
variable "password" {
  type      = string
  sensitive = true
}
variable "user" {
  default = "app"
}
locals {
  url = "postgres://${var.user}:${var.password}@db:5432/app"
}
node "n1" {
  address = "local"
}
service "api" {
  image = "api"
  env = {
    DATABASE_URL = local.url
    USER         = var.user
  }
  sensitive_env = {
    API_KEY = "k-123456"
  }
  command = ["api", "--password", var.password]
}
`})
	cfg, diags := Load(dir, Inputs{Args: []VarArg{{Value: "password=pa55word"}}})
	if diags.HasErrors() {
		t.Fatalf("diagnostics:\n%s", renderAll(diags))
	}
	env := cfg.Service("api").Env
	want := map[string]EnvVar{
		"DATABASE_URL": {Value: "postgres://app:pa55word@db:5432/app", Sensitive: true},
		"USER":         {Value: "app"},
		"API_KEY":      {Value: "k-123456", Sensitive: true},
	}
	for k, w := range want {
		if env[k] != w {
			t.Errorf("env %s = %+v, want %+v", k, env[k], w)
		}
	}
	for _, s := range []string{"pa55word", "postgres://app:pa55word@db:5432/app", "k-123456"} {
		found := false
		for _, v := range cfg.SensitiveValues {
			found = found || v == s
		}
		if !found {
			t.Errorf("SensitiveValues %q lacks %q", cfg.SensitiveValues, s)
		}
	}
	for _, v := range cfg.SensitiveValues {
		if v == "app" {
			t.Errorf("a plain value is in SensitiveValues: %q", cfg.SensitiveValues)
		}
	}
	if !cfg.Variables[0].Sensitive || cfg.Variables[0].Name != "password" {
		t.Errorf("variables: %+v", cfg.Variables)
	}
}

func TestVarFileUndeclaredIsWarning(t *testing.T) {
	dir := writeConfig(t, map[string]string{
		"main.hcl":     precedenceConfig,
		"env.vars.hcl": "x = \"v2\"\ny = 1\n",
	})
	cfg, diags := Load(dir, Inputs{Args: []VarArg{{File: true, Value: filepath.Join(dir, "env.vars.hcl")}}})
	if diags.HasErrors() || len(diags) != 1 || diags[0].Summary != "Value for undeclared variable" {
		t.Fatalf("diagnostics:\n%s", renderAll(diags))
	}
	if cfg.Service("web").Image != "nginx:v2" {
		t.Errorf("image %q", cfg.Service("web").Image)
	}
}
