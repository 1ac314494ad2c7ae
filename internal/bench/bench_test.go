package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A cluster the bench brought up is taken down at the end, unless a test
// process holds its lock then.
func TestClusterDown(t *testing.T) {
	dir := t.TempDir()
	tc := filepath.Join(dir, ".testcluster")
	os.MkdirAll(tc, 0o700)
	lock := filepath.Join(tc, "lock")
	os.WriteFile(lock, nil, 0o644)
	calls := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "testcluster")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >>"+calls+"\n"), 0o755)
	b := &bench{ctx: context.Background()}
	ran := func() string { out, _ := os.ReadFile(calls); return strings.TrimSpace(string(out)) }

	// In use: another process's shared lock. The bench waits a minute for
	// it; release it after a moment and the down goes ahead.
	f, err := os.Open(lock)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(500 * time.Millisecond); f.Close() }()
	start := time.Now()
	if err := b.clusterDown(context.Background(), script, tc); err != nil {
		t.Fatal(err)
	}
	if got := ran(); got != "down" {
		t.Errorf("scripts/testcluster ran with %q, want down", got)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("down went ahead after %s, while the lock was held", d)
	}

	// Held for longer than the bench waits: left up. (A cancelled context
	// ends the wait early, as a run's third Ctrl-C would.)
	os.Remove(calls)
	f2, _ := os.Open(lock)
	defer f2.Close()
	syscall.Flock(int(f2.Fd()), syscall.LOCK_SH)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b.clusterDown(ctx, script, tc)
	if got := ran(); got != "" {
		t.Errorf("scripts/testcluster ran with %q while the cluster was in use", got)
	}
}
