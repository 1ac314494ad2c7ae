package main

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/planner"
)

// The plan file's I/O; its content is planner.EncodePlanFile's.

// writePlanFile saves a plan with mode 0600, atomically: the content goes to
// a temporary file next to path, which is then renamed over it, so a reader
// never sees half a plan and an old plan file is replaced whole or not at all.
func writePlanFile(path string, sp *planner.SavedPlan) error {
	b, err := planner.EncodePlanFile(sp)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	// A temporary file left by an earlier run keeps its mode: set it.
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// readPlanFile reads a saved plan.
func readPlanFile(path string) (*planner.SavedPlan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return planner.DecodePlanFile(path, b)
}

// isPlanFile reports whether path is a regular file (not a directory, not
// an .hcl file), so `apply PATH` can tell a saved plan from a configuration
// directory.
func isPlanFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && filepath.Ext(path) != ".hcl"
}
