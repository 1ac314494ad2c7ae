package planner

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The planner is pure: no I/O, no network, no clock, no randomness, no
// context. Its non-test files must not import the packages that give those.
func TestPlannerImportsArePure(t *testing.T) {
	forbidden := map[string]string{
		"os":            "file and process I/O",
		"io/fs":         "file I/O",
		"io/ioutil":     "file I/O",
		"path/filepath": "file paths (I/O belongs to the caller)",
		"net":           "network",
		"net/http":      "network",
		"time":          "the clock",
		"math/rand":     "randomness",
		"math/rand/v2":  "randomness",
		"crypto/rand":   "randomness",
		"context":       "cancellation and deadlines (I/O belongs to the caller)",
		"os/exec":       "processes",
		"syscall":       "system calls",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		checked++
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if why, bad := forbidden[path]; bad || strings.HasPrefix(path, "net/") {
				if !bad {
					why = "network"
				}
				t.Errorf("%s imports %q (%s); the planner must stay pure", f, path, why)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d non-test files checked; wrong directory?", checked)
	}
}
