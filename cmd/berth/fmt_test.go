package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies a directory of small files.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFmtCheckExamples(t *testing.T) {
	code, out, errOut := runBerth(t, nil, "fmt", "-check", "../../examples")
	if code != 0 {
		t.Fatalf("fmt -check examples: exit %d\n%s%s", code, out, errOut)
	}
	for _, dir := range []string{"../../examples/single-node", "../../examples/three-zones"} {
		if code, out, _ := runBerth(t, nil, "fmt", "-check", "-recursive=false", dir); code != 0 {
			t.Errorf("fmt -check %s: exit %d\n%s", dir, code, out)
		}
	}
}

func TestFmtMisindented(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../examples", dir)
	file := filepath.Join(dir, "three-zones", "services.hcl")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	good := string(b)
	bad := strings.Replace(good, "\n  image = \"postgres:16\"\n", "\n      image    =   \"postgres:16\"\n", 1)
	if bad == good {
		t.Fatal("test setup: nothing replaced")
	}
	write(t, file, bad)

	code, out, _ := runBerth(t, nil, "fmt", "-check", dir)
	if code != 1 || strings.TrimSpace(out) != file {
		t.Fatalf("fmt -check: exit %d, listed %q; want 1 and %s", code, out, file)
	}
	if after, _ := os.ReadFile(file); string(after) != bad {
		t.Fatal("fmt -check changed the file")
	}

	code, out, _ = runBerth(t, nil, "fmt", "-check", "-diff", dir)
	if code != 1 || !strings.Contains(out, "-      image    =   \"postgres:16\"\n+  image = \"postgres:16\"\n") {
		t.Errorf("fmt -check -diff: exit %d\n%s", code, out)
	}

	if code, out, errOut := runBerth(t, nil, "fmt", dir); code != 0 || strings.TrimSpace(out) != file {
		t.Fatalf("fmt: exit %d\n%s%s", code, out, errOut)
	}
	if after, _ := os.ReadFile(file); string(after) != good {
		t.Errorf("fmt wrote:\n%s", after)
	}
	if code, out, _ := runBerth(t, nil, "fmt", "-check", dir); code != 0 || out != "" {
		t.Errorf("fmt -check after fmt: exit %d\n%s", code, out)
	}
}

func TestFmtRecursiveAndFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "top.hcl"), "a = 1\n")
	write(t, filepath.Join(dir, "sub", "deep.hcl"), "a   = 1\n")
	write(t, filepath.Join(dir, "testdata", "skip.hcl"), "a   = 1\n")
	write(t, filepath.Join(dir, "notes.txt"), "a   = 1\n")

	if code, out, _ := runBerth(t, nil, "fmt", "-check", "-recursive=false", dir); code != 0 || out != "" {
		t.Errorf("-recursive=false: exit %d\n%s", code, out)
	}
	if code, out, _ := runBerth(t, nil, "fmt", "-check", dir); code != 1 || strings.TrimSpace(out) != filepath.Join(dir, "sub", "deep.hcl") {
		t.Errorf("recursive: exit %d\n%s", code, out)
	}
	// A file named explicitly is formatted whatever its name.
	if code, out, _ := runBerth(t, nil, "fmt", "-check", filepath.Join(dir, "notes.txt")); code != 1 || out == "" {
		t.Errorf("explicit file: exit %d\n%s", code, out)
	}
}

func TestFmtSyntaxError(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.hcl"), "service \"web\" {\n  image = \n}\n")
	code, _, errOut := runBerth(t, []string{"NO_COLOR=1"}, "fmt", dir)
	if code != 1 || !strings.Contains(errOut, "main.hcl:2:") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}

func TestUnifiedDiff(t *testing.T) {
	var b strings.Builder
	writeUnifiedDiff(&b, "x.hcl", []byte("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n"), []byte("1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\neleven\n"))
	want := `--- old/x.hcl
+++ new/x.hcl
@@ -1,6 +1,6 @@
 1
 2
-3
+three
 4
 5
 6
@@ -8,4 +8,4 @@
 8
 9
 10
-11
+eleven
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
