package main

import (
	"strings"
	"testing"
)

// berth rollback over fake nodes: flags checked before anything is read,
// nothing to return to after one apply, then apply v1, apply v2, rollback:
// the plan says what it returns to, the replicas run v1, the configuration
// still says v2 and plan shows it; -to with an unknown ID fails.
func TestRollbackCommand(t *testing.T) {
	tc := newCLICluster(t, cliWeb("echo:v1"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rollback", "-json", tc.dir}, "-json needs -auto-approve"},
		{[]string{"rollback", "-recover", "sideways", tc.dir}, "-recover must be rollback or forward"},
		{[]string{"rollback", tc.dir, tc.dir}, "expected at most one directory"},
	} {
		if r := tc.run(Streams{}, c.args...); r.code != 1 || !strings.Contains(r.err, c.want) {
			t.Fatalf("%v: %s", c.args, r)
		}
	}
	if len(tc.mutations()) != 0 {
		t.Fatalf("a refused command changed something: %v", tc.mutations())
	}
	if r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
		t.Fatal(r)
	}
	if r := tc.run(Streams{}, "rollback", "-auto-approve", tc.dir); r.code != 1 || !strings.Contains(r.err, "no earlier successful apply to roll back to") {
		t.Fatal(r)
	}
	first := tc.audit("node1")[0].ApplyID
	tc.write(cliWeb("echo:v2"))
	if r := tc.run(Streams{}, "apply", "-auto-approve", tc.dir); r.code != 0 {
		t.Fatal(r)
	}
	// Without a terminal and -auto-approve: refused, nothing changed.
	tc.resetCalls()
	if r := tc.run(Streams{}, "rollback", tc.dir); r.code != 1 || !strings.Contains(r.out, "Rollback to apply "+first) {
		t.Fatal(r)
	}
	if len(tc.mutations()) != 0 {
		t.Fatalf("an unconfirmed rollback changed something: %v", tc.mutations())
	}
	r := tc.run(Streams{}, "rollback", "-auto-approve", tc.dir)
	if r.code != 0 || !strings.Contains(r.out, "Rollback to apply "+first) || !strings.Contains(r.out, `image: "echo:v2" -> "echo:v1"`) {
		t.Fatal(r)
	}
	for _, c := range tc.containers() {
		if !strings.HasSuffix(c, " echo:v1") {
			t.Fatalf("after rollback: %v", tc.containers())
		}
	}
	r = tc.run(Streams{}, "plan", tc.dir)
	if r.code != 0 || !strings.Contains(r.out, `image: "echo:v1" -> "echo:v2"`) || strings.Contains(r.out, "Rollback to") ||
		!strings.Contains(r.out, "[drift]: drift: it runs the revision of apply "+first+" (berth rollback)") ||
		!strings.Contains(r.out, `service "web" runs the revision of apply `+first+", restored by berth rollback") {
		t.Fatal(r)
	}
	if r := tc.run(Streams{}, "rollback", "-auto-approve", "-to", "0000dead", tc.dir); r.code != 1 || !strings.Contains(r.err, "no audit record of apply 0000dead") {
		t.Fatal(r)
	}
}
