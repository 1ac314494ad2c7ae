package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/planner"
)

func TestPlanFileWriteRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.plan")
	// An older plan file and a left-over temporary file, both readable by
	// everyone: the new plan must still end up 0600.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := &planner.SavedPlan{BerthVersion: "test", ConfigDir: dir,
		Plan: &planner.Plan{FormatVersion: planner.FormatVersion, ID: "abc", Project: "demo", Actions: []planner.Action{}}}
	if err := writePlanFile(path, sp); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("plan file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	got, err := readPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Plan.ID != "abc" || got.ConfigDir != dir || got.FormatVersion != planner.FormatVersion {
		t.Errorf("read back %+v", got)
	}
	if !isPlanFile(path) {
		t.Error("a plan file is not recognised")
	}
	if isPlanFile(dir) {
		t.Error("a directory is taken for a plan file")
	}
	hcl := filepath.Join(dir, "main.hcl")
	os.WriteFile(hcl, []byte(`project "x" {}`), 0o644)
	if isPlanFile(hcl) {
		t.Error("an .hcl file is taken for a plan file")
	}
	if _, err := readPlanFile(hcl); err == nil || !strings.Contains(err.Error(), hcl) {
		t.Errorf("reading an .hcl file as a plan: %v", err)
	}
	if _, err := readPlanFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("reading a missing plan file succeeded")
	}
}

// A failed write leaves the old plan file as it was.
func TestPlanFileWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.plan")
	os.WriteFile(path, []byte("old"), 0o600)
	// The temporary file's name is taken by a directory: the write fails.
	if err := os.Mkdir(path+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	sp := &planner.SavedPlan{Plan: &planner.Plan{Project: "demo"}}
	if err := writePlanFile(path, sp); err == nil {
		t.Fatal("write succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("old plan file changed to %q", b)
	}
}
