package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Input nested deeply enough to overflow the parser's stack (a fatal error,
// not a panic: 100000 brackets did) is refused with a diagnostic before it
// is parsed.
func TestDeepNestingRefused(t *testing.T) {
	rep := strings.Repeat
	for name, expr := range map[string]string{
		"brackets":     rep("[", 100000) + "1" + rep("]", 100000),
		"parentheses":  rep("(", 5000) + "1" + rep(")", 5000),
		"objects":      rep("{a = ", 5000) + "1" + rep("}", 5000),
		"templates":    rep(`"${`, 5000) + "1" + rep(`}"`, 5000),
		"unary":        rep("!", 5000) + "true",
		"negation":     rep("- ", 5000) + "1",
		"conditionals": rep("true ? ", 5000) + "1" + rep(" : 2", 5000),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src := "locals {\n  x = " + expr + "\n}\n"
			os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644)
			_, diags := Load(dir, Inputs{AllowUnset: true})
			var found bool
			for _, d := range diags {
				if d.Summary == "Nesting too deep" {
					found = true
					if d.Subject == nil || d.Subject.Start.Line != 2 || !strings.HasSuffix(d.Subject.Filename, "main.hcl") {
						t.Errorf("diagnostic without the position: %+v", d.Subject)
					}
				}
			}
			if !found {
				t.Fatalf("no nesting diagnostic: %v", diags)
			}
		})
	}
}

func TestNestingWithinLimit(t *testing.T) {
	n := MaxNesting - 2
	src := "locals {\n  x = " + strings.Repeat("[", n) + "1" + strings.Repeat("]", n) + "\n  y = a ? b : c\n  z = -1 - -2\n}\n"
	if d := CheckNesting([]byte(src), "main.hcl", false); d != nil {
		t.Fatalf("%d levels refused: %s", n, d.Detail)
	}
}

func TestDeepVarValueRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.hcl"), []byte("variable \"x\" {\n  type = list(any)\n}\n"), 0o644)
	_, diags := Load(dir, Inputs{Args: []VarArg{{Value: "x=" + strings.Repeat("[", 100000)}}})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "nests more than") {
		t.Fatalf("a deeply nested -var value: %v", diags)
	}
}
