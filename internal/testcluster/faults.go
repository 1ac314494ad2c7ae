package testcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fault helpers below run scripts/testcluster (from the checkout that
// owns the cluster) and undo their fault when the test ends. While a test has
// a fault in place, its process holds the cluster lock exclusively: tests of
// other packages wait in Require, and a fault waits for the tests the other
// test processes are running to end (they step aside in Require before their
// next one). Tests of the same package are the package's own business: do
// not inject faults from parallel tests.
//
// Take the lock (Exclusive, or the fault itself) before the test sets up
// anything: while a process waits for the exclusive lock it holds no lock at
// all (flock converts a lock by dropping it first), so another process may
// inject its own fault meanwhile, cutting the sessions the waiting test has
// open and running out its deadlines. A test that injects a fault later
// calls Exclusive first.

// StopSSHD kills the node's sshd and every session it serves: new connections
// are refused. Undone by StartSSHD (automatically at the end of the test).
func (c *Cluster) StopSSHD(t testing.TB, node string) {
	t.Helper()
	c.fault(t, func() { c.script(t, "start-sshd", node) }, "stop-sshd", node)
}

// StartSSHD restarts the node's sshd (killing its sessions) with extra lines
// put first in its sshd_config, such as "MaxSessions 1" or "MaxStartups 1".
// Without lines it restores the plain configuration. With lines, the plain
// configuration comes back at the end of the test.
func (c *Cluster) StartSSHD(t testing.TB, node string, extraConfigLines ...string) {
	t.Helper()
	if len(extraConfigLines) == 0 {
		c.script(t, "start-sshd", node)
		return
	}
	c.fault(t, func() { c.script(t, "start-sshd", node) }, append([]string{"start-sshd", node}, extraConfigLines...)...)
}

// Blackhole silently drops every packet into and out of the node (iptables in
// its namespace): connections to it hang instead of being refused, and
// established ones stall. Undone by Unblackhole (automatically at the end of
// the test). The node's engine stays reachable through Docker(t, node).
func (c *Cluster) Blackhole(t testing.TB, node string) {
	t.Helper()
	c.fault(t, func() { c.script(t, "unblackhole", node) }, "blackhole", node)
}

// Unblackhole lets the node's traffic through again.
func (c *Cluster) Unblackhole(t testing.TB, node string) {
	t.Helper()
	c.script(t, "unblackhole", node)
}

// SwapHostKey restarts the node's sshd with another ed25519 host key, one that
// KnownHosts and HostKeyFingerprint do not know. Undone by RestoreHostKey
// (automatically at the end of the test).
func (c *Cluster) SwapHostKey(t testing.TB, node string) {
	t.Helper()
	c.fault(t, func() { c.script(t, "restore-hostkey", node) }, "swap-hostkey", node)
}

// RestoreHostKey restarts the node's sshd with its usual host key.
func (c *Cluster) RestoreHostKey(t testing.TB, node string) {
	t.Helper()
	c.script(t, "restore-hostkey", node)
}

// Exclusive holds the cluster exclusively until the test ends, without a
// fault: for measurements (leaked connections, engine goroutines) that
// other test processes using the cluster would disturb, and first thing in
// a test that injects a fault later. It waits for them; call it before the
// test opens a session, starts berth or starts a deadline.
func (c *Cluster) Exclusive(t testing.TB) {
	t.Helper()
	c.exclusive(t)
}

// fault takes the exclusive lock for the rest of the test, arranges undo to
// run when the test ends, then runs the script with args.
func (c *Cluster) fault(t testing.TB, undo func(), args ...string) {
	t.Helper()
	c.Node(t, args[1])
	c.exclusive(t)
	t.Cleanup(undo)
	c.script(t, args...)
}

func (c *Cluster) script(t testing.TB, args ...string) {
	t.Helper()
	path := filepath.Join(filepath.Dir(c.Dir), "scripts", "testcluster")
	start := time.Now()
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/testcluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("scripts/testcluster %s (%s)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}

var excl struct {
	sync.Mutex
	n int // tests of this process with a fault in place
}

// exclusive turns this process's shared cluster lock exclusive until the
// test ends (and every other test of this process that asked has ended).
func (c *Cluster) exclusive(t testing.TB) {
	t.Helper()
	excl.Lock()
	defer excl.Unlock()
	if excl.n == 0 {
		if err := relock(true, 0); err != nil {
			t.Logf("testcluster: waiting for the tests other processes run on the cluster to end")
			if err := relock(true, 10*time.Minute); err != nil {
				// The failed wait dropped the shared lock: take it back for
				// the process's other tests.
				if err2 := relock(false, 10*time.Minute); err2 != nil {
					err = errors.Join(err, err2)
				}
				t.Fatalf("testcluster: %v", err)
			}
		}
	}
	excl.n++
	t.Cleanup(func() {
		excl.Lock()
		defer excl.Unlock()
		excl.n--
		if excl.n == 0 {
			if err := relock(false, 10*time.Minute); err != nil {
				t.Errorf("testcluster: %v", err)
			}
		}
	})
}

// yieldToFaults lets a process waiting to hold the cluster exclusively have
// it before this process's next test starts (see lock_unix.go). Only at the
// start of a top-level test, and only while no test of this process holds
// it, is nothing of this process in flight.
func yieldToFaults(t testing.TB) {
	t.Helper()
	if strings.Contains(t.Name(), "/") {
		return
	}
	excl.Lock()
	defer excl.Unlock()
	if excl.n > 0 {
		return
	}
	if err := yield(10 * time.Minute); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

// SSHConnections counts the established TCP connections to port 22 in the
// node's network namespace (read through its sshd's /proc entry), for tests
// that check berth leaves no connection behind.
func (c *Cluster) SSHConnections(t testing.TB, node string) int {
	t.Helper()
	return EstablishedSSH(c.sshdPID(t, node))
}

// ReceivedBytes is the byte count the node's cluster interface (eth0 in
// its network namespace) has received: for a test that must act once data
// is flowing to the node, rather than after a fixed sleep.
func (c *Cluster) ReceivedBytes(t testing.TB, node string) int64 {
	t.Helper()
	pid := c.sshdPID(t, node)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, counters, ok := strings.Cut(l, ":")
		if f := strings.Fields(counters); ok && strings.TrimSpace(name) == "eth0" && len(f) > 0 {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("%s: /proc/%d/net/dev: eth0: %v", node, pid, err)
			}
			return n
		}
	}
	t.Fatalf("%s: /proc/%d/net/dev has no eth0", node, pid)
	return 0
}

// sshdPID is the pid of the node's sshd, whose /proc entry shows the
// node's network namespace.
func (c *Cluster) sshdPID(t testing.TB, node string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, node, "sshd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: sshd.pid: %v", node, err)
	}
	return pid
}

// EstablishedSSH counts the established TCP connections to port 22 in the
// network namespace of process pid.
func EstablishedSSH(pid int) int {
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		for _, l := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(l)
			if len(fs) > 3 && strings.HasSuffix(fs[1], ":0016") && fs[3] == "01" {
				n++
			}
		}
	}
	return n
}

// SwarmUp forms a Swarm of the nodes with scripts/testcluster swarm up
// (node1 manager, node2 and node3 workers, node labels zone and role as in
// nodes.hcl). Swarm mode changes the nodes for every test, so it holds the
// cluster exclusively for the rest of the test, and takes the swarm apart
// again when the test ends (scripts/testcluster swarm down: every node
// leaves, nothing is left behind). Register cleanups that need the swarm
// after calling it: they run before the swarm goes.
func (c *Cluster) SwarmUp(t testing.TB) {
	t.Helper()
	c.exclusive(t)
	t.Cleanup(func() { c.SwarmDown(t) })
	c.swarmScript(t, "up")
}

// SwarmDown takes the swarm apart (scripts/testcluster swarm down).
func (c *Cluster) SwarmDown(t testing.TB) {
	t.Helper()
	c.swarmScript(t, "down")
}

// swarmScript runs scripts/testcluster swarm ARG of this checkout (the
// cluster may have been brought up by another one: BERTH_TC_DIR names it).
func (c *Cluster) swarmScript(t testing.TB, arg string) {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command(filepath.Join(root, "scripts", "testcluster"), "swarm", arg)
	cmd.Env = append(os.Environ(), "BERTH_TC_DIR="+c.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/testcluster swarm %s: %v\n%s", arg, err, out)
	}
	t.Logf("scripts/testcluster swarm %s (%s): %s", arg, time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
}
