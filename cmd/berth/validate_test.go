package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runBerth runs the CLI in-process and returns the exit code and outputs.
func runBerth(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	s := Streams{In: strings.NewReader(""), Out: &out, Err: &errOut, Environ: env}
	code := Run(context.Background(), args, s)
	return code, out.String(), errOut.String()
}

func TestValidateExamples(t *testing.T) {
	dirs, _ := filepath.Glob("../../examples/*")
	if len(dirs) < 3 {
		t.Fatalf("found %d examples", len(dirs))
	}
	code, out, errOut := runBerth(t, nil, append([]string{"validate"}, dirs...)...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Success! The configuration is valid") {
		t.Errorf("stdout:\n%s", out)
	}
}

// diagLine is the head line of every human diagnostic.
var diagLine = regexp.MustCompile(`(?m)^([^:\s]+\.hcl):(\d+):(\d+): (error|warning): (.+)$`)

func TestValidateInvalidHuman(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.hcl"), `node "n1" {
  address = "10.0.0.1"
}

service "web" {
  image    = "nginx"
  replicas = -1
  port {
    target = 0
  }
}
`)
	code, out, errOut := runBerth(t, []string{"NO_COLOR=1"}, "validate", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	m := diagLine.FindAllStringSubmatch(errOut, -1)
	if len(m) != 2 {
		t.Fatalf("want 2 diagnostics, got %d:\n%s", len(m), errOut)
	}
	wantFile := filepath.Join(dir, "main.hcl")
	for i, want := range [][3]string{{"7", "14", "Invalid replicas"}, {"9", "14", "Invalid port"}} {
		if m[i][1] != wantFile || m[i][2] != want[0] || m[i][3] != want[1] || m[i][4] != "error" || m[i][5] != want[2] {
			t.Errorf("diagnostic %d: %q, want %s:%s:%s: error: %s", i, m[i][0], wantFile, want[0], want[1], want[2])
		}
	}
	// HCL's snippet follows each head line.
	if !strings.Contains(errOut, "   7:   replicas = -1") {
		t.Errorf("no source snippet:\n%s", errOut)
	}
	if !strings.HasSuffix(errOut, "2 errors\n") {
		t.Errorf("no summary line:\n%s", errOut)
	}
	if strings.Contains(errOut, "\x1b[") {
		t.Errorf("colour despite NO_COLOR:\n%q", errOut)
	}
}

type validateDoc struct {
	FormatVersion string `json:"format_version"`
	Valid         bool   `json:"valid"`
	ErrorCount    int    `json:"error_count"`
	WarningCount  int    `json:"warning_count"`
	Diagnostics   []struct {
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
		Range    *struct {
			Filename string `json:"filename"`
			Start    struct{ Line, Column, Byte int }
			End      struct{ Line, Column, Byte int }
		} `json:"range"`
	} `json:"diagnostics"`
}

func TestValidateJSON(t *testing.T) {
	code, out, errOut := runBerth(t, nil, "validate", "-json", "../../config/testdata/invalid/depends-on-unknown")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut)
	}
	var doc validateDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if doc.FormatVersion != "1.0" || doc.Valid || doc.ErrorCount != 2 || len(doc.Diagnostics) != 2 {
		t.Fatalf("unexpected document: %+v", doc)
	}
	d := doc.Diagnostics[0]
	if d.Severity != "error" || d.Summary != "Reference to undeclared service" || d.Range == nil ||
		!strings.HasSuffix(d.Range.Filename, "main.hcl") || d.Range.Start.Line != 6 || d.Range.Start.Column != 17 {
		t.Errorf("first diagnostic: %+v", d)
	}
	if !strings.Contains(d.Detail, `Did you mean "dbb"?`) {
		t.Errorf("detail: %q", d.Detail)
	}

	code, out, _ = runBerth(t, nil, "validate", "-json", "../../examples/single-node")
	if code != 0 {
		t.Fatalf("exit %d for a valid configuration", code)
	}
	doc = validateDoc{}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.Valid || doc.Diagnostics == nil {
		t.Errorf("valid document: %v %+v\n%s", err, doc, out)
	}
}

// TestValidateInvalidCases runs the CLI over every golden case: each exits 1.
func TestValidateInvalidCases(t *testing.T) {
	dirs, _ := filepath.Glob("../../config/testdata/invalid/*")
	if len(dirs) < 40 {
		t.Fatalf("found %d cases", len(dirs))
	}
	for _, dir := range dirs {
		args := []string{"validate", "-no-color"}
		var env []string
		if b, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				kind, rest, _ := strings.Cut(line, " ")
				switch kind {
				case "-var":
					args = append(args, "-var", rest)
				case "-var-file":
					args = append(args, "-var-file", filepath.Join(dir, rest))
				case "env":
					env = append(env, rest)
				}
			}
		}
		code, _, errOut := runBerth(t, env, append(args, dir)...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", filepath.Base(dir), code)
		}
		if strings.Contains(errOut, "goroutine ") || strings.Contains(errOut, "Internal error") {
			t.Errorf("%s: %s", filepath.Base(dir), errOut)
		}
	}
}

func TestValidateSensitiveNeverShown(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.hcl"), `variable "password" {
  type      = string
  sensitive = true
  validation {
    condition     = length(var.password) >= 32
    error_message = "The password is too short: ${var.password}."
  }
}

node "n1" {
  address = "local"
}

service "db" {
  image             = "postgres"
  stop_grace_period = var.password
  hostname          = "${var.password}!"
}
`)
	write(t, filepath.Join(dir, "secret.vars.hcl"), "password = \"hunter2-secret\"\n")
	for _, args := range [][]string{
		{"validate", "-var", "password=hunter2-secret", dir},
		{"validate", "-var-file", filepath.Join(dir, "secret.vars.hcl"), dir},
		{"validate", "-json", "-var", "password=hunter2-secret", dir},
	} {
		code, out, errOut := runBerth(t, []string{"NO_COLOR=1"}, args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		if strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v: the sensitive value is shown:\n%s%s", args, out, errOut)
		}
		if !strings.Contains(out+errOut, "Invalid value for variable") || !strings.Contains(out+errOut, "Invalid duration") {
			t.Errorf("%v: missing diagnostics:\n%s%s", args, out, errOut)
		}
	}
}

func TestValidateUsage(t *testing.T) {
	if code, _, _ := runBerth(t, nil, "validate", "-h"); code != 0 {
		t.Errorf("validate -h: exit %d", code)
	}
	if code, _, errOut := runBerth(t, nil, "validate", "/nonexistent/berth"); code != 1 || !strings.Contains(errOut, "Failed to read configuration directory") {
		t.Errorf("missing directory: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runBerth(t, nil, "validate", t.TempDir()); code != 1 || !strings.Contains(errOut, "No configuration files") {
		t.Errorf("empty directory: exit %d\n%s", code, errOut)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestValidateSensitiveInFunctionErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.hcl"), `variable "token" {
  sensitive = true
}

locals {
  n = parseint(upper(var.token), 10)
}

node "n1" {
  address = "local"
}

service "api" {
  image    = "api"
  replicas = parseint(lower(var.token), 16)
  env = {
    N = local.n
  }
}
`)
	code, out, errOut := runBerth(t, []string{"NO_COLOR=1", "BERTH_VAR_token=zebra-secret"}, "validate", dir)
	if code != 1 || !strings.Contains(errOut, "Invalid function argument") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
	if strings.Contains(strings.ToLower(out+errOut), "zebra") {
		t.Errorf("a value derived from the sensitive one is shown:\n%s%s", out, errOut)
	}
}
