package errtext

import "testing"

func TestRepeatedAtJoin(t *testing.T) {
	for s, want := range map[string]bool{
		"create: create container brk-web-1: Conflict":                                      true,
		"create volume data: create volume data: no space":                                  true,
		`service "web" replica 1 on node node1 (container demo-web-1): create: start: boom`: false,
		"take the lock on node node1: create volume berth-lock-demo: boom":                  false,
		"record the plan in the lock: record the plan in the lock on node node1: x":         true,
		"first line\n  - inspect container c: inspect container c: x":                       true,
		"Error: the project is locked: wait":                                                false,
	} {
		if got := RepeatedAtJoin(s) != ""; got != want {
			t.Errorf("RepeatedAtJoin(%q) = %v, want %v", s, got, want)
		}
	}
}
