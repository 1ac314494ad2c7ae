package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// import compose -o DIR writes DIR/main.hcl that fmt -check and validate
// accept, prints the warnings with file and line, and never overwrites.
func TestImportCompose(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cfg")
	src := filepath.Join("..", "..", "internal", "importcompose", "testdata", "interpolation", "compose.yml")
	code, stdout, errb := runBerth(t, nil, "import", "compose", "-o", out, src)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	if stdout != "" || !strings.Contains(errb, "compose.yml:13: services.web.ports[0]") {
		t.Errorf("stdout %q, stderr %q", stdout, errb)
	}
	if code, _, errb := runBerth(t, nil, "fmt", "-check", out); code != 0 {
		t.Errorf("fmt -check: exit %d: %s", code, errb)
	}
	if code, _, errb := runBerth(t, nil, "validate", out); code != 0 {
		t.Errorf("validate: exit %d: %s", code, errb)
	}
	if code, _, errb := runBerth(t, nil, "import", "compose", "-o", out, src); code != 1 || !strings.Contains(errb, "not overwritten") {
		t.Errorf("second import: exit %d: %s", code, errb)
	}
	if code, _, _ := runBerth(t, nil, "import", "swarm", src); code != 1 {
		t.Errorf("import swarm: exit %d", code)
	}
}
