package e2e

// Scenario 11: a soak of consecutive applies, each a fresh berth process,
// watching the nodes for anything that accumulates.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-dev/berth/internal/testcluster"
)

const soakApplies = 50

// nodeSnapshot is what could leak on a node.
type nodeSnapshot struct {
	containers, volumes, networks int // engine-wide
	// objects: every container, volume and network by kind and name, with
	// its berth.project label ("" when none).
	objects             map[string]string
	goroutines, fds     int // the engine's own
	rssKB               int // dockerd's resident memory
	sshdChildren, ssh22 int // sshd processes serving sessions, established connections to :22
}

func (s nodeSnapshot) String() string {
	return fmt.Sprintf("containers %d, volumes %d, networks %d, dockerd goroutines %d fds %d rss %d MB, sshd sessions %d, :22 connections %d",
		s.containers, s.volumes, s.networks, s.goroutines, s.fds, s.rssKB/1024, s.sshdChildren, s.ssh22)
}

func snapshot(t *testing.T, c *testcluster.Cluster, node string) nodeSnapshot {
	t.Helper()
	ctx := context.Background()
	cli := c.Docker(t, node)
	s := nodeSnapshot{objects: map[string]string{}}
	cs := containersOf(t, c, node, "")
	s.containers = len(cs)
	for _, ct := range cs {
		s.objects["container "+ct.Name] = ct.Labels["berth.project"]
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.volumes = len(vs.Volumes)
	for _, v := range vs.Volumes {
		s.objects["volume "+v.Name] = v.Labels["berth.project"]
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.networks = len(ns)
	for _, nw := range ns {
		s.objects["network "+nw.Name] = nw.Labels["berth.project"]
	}
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.goroutines, s.fds = info.NGoroutines, info.NFd
	s.rssKB = rssKB(pidOf(t, c, node, "dockerd.pid"))
	sshd := pidOf(t, c, node, "sshd.pid")
	s.sshdChildren = len(childrenOf(sshd))
	s.ssh22 = testcluster.EstablishedSSH(sshd)
	return s
}

func pidOf(t *testing.T, c *testcluster.Cluster, node, file string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, node, file))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func rssKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			if f := strings.Fields(s[i+1:]); len(f) >= 2 {
				if pp, _ := strconv.Atoi(f[1]); pp == pid {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// TestReliabilitySoak applies 50 times, alternating v1 and v2 on the three
// nodes (one batch, all nodes at once, a short monitor), each apply a new
// berth process, with the cluster held exclusively so that the counts are
// this test's alone. Afterwards nothing has accumulated: no container,
// volume (beyond the capped audit records) or network, no sshd session or
// connection, and the engines' goroutines, fds and memory are flat; so is
// berth's own peak memory from run to run.
func TestReliabilitySoak(t *testing.T) {
	c := testcluster.Require(t)
	c.Exclusive(t)
	scenarioRun(t, scSoak)
	const port = 18918
	project := testcluster.ProjectName(t)
	dir := c.ConfigDirProject(t, project, map[string]string{"main.hcl": rWeb(imageOf("v1"), port, "100ms", 3, "")})
	settle := func() map[string]nodeSnapshot {
		// Sessions of the last berth may take a moment to end on the nodes.
		var snap map[string]nodeSnapshot
		for try := 0; try < 30; try++ {
			snap = map[string]nodeSnapshot{}
			busy := false
			for _, n := range c.Nodes {
				s := snapshot(t, c, n.Name)
				snap[n.Name] = s
				busy = busy || s.sshdChildren > 0 || s.ssh22 > 0
			}
			if !busy {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		return snap
	}
	s0 := settle()
	var s1 map[string]nodeSnapshot
	var rss []int
	var took []time.Duration
	start := time.Now()
	for i := 1; i <= soakApplies; i++ {
		v := "v1"
		if i%2 == 0 {
			v = "v2"
		}
		writeMain(t, dir, rWeb(imageOf(v), port, "100ms", 3, ""))
		t0 := time.Now()
		r, maxRSS := berthRSS(t, "apply", "-auto-approve", dir)
		took = append(took, time.Since(t0))
		if r.code != 0 {
			t.Fatalf("apply %d of %d failed:\n%s", i, soakApplies, r)
		}
		rss = append(rss, maxRSS)
		if vs := versions(c, port); uniform(vs) != v {
			t.Fatalf("after apply %d every replica should serve %s: %v", i, v, vs)
		}
		if i == 5 {
			s1 = settle() // warmed up
		}
	}
	elapsed := time.Since(start)
	s2 := settle()
	assertClean(t, c, project)

	var audit int
	for _, n := range c.Nodes {
		a, b, w := s0[n.Name], s2[n.Name], s1[n.Name]
		t.Logf("%s before: %s", n.Name, a)
		t.Logf("%s after 5:  %s", n.Name, w)
		t.Logf("%s after %d: %s", n.Name, soakApplies, b)
		pv := projectVolumes(t, c, n.Name, project)
		for _, v := range pv {
			if v.Labels["berth.kind"] != "audit" {
				t.Errorf("%s: volume %s (%s) left by the soak", n.Name, v.Name, v.Labels["berth.kind"])
			}
		}
		audit = len(pv)
		if len(pv) > 20 {
			t.Errorf("%s: %d audit records kept (cap 20)", n.Name, len(pv))
		}
		// What appeared on the engine: only the project's replica, its
		// project network and its audit records. (Objects of other berth projects are someone
		// else's: a run that does not take the cluster lock.)
		var added []string
		for k, proj := range b.objects {
			if _, had := a.objects[k]; had || (proj != "" && proj != project) {
				continue
			}
			if proj == project && (strings.HasPrefix(k, "container "+project+"-web-") || strings.HasPrefix(k, "volume berth-audit-") || k == "network berth-"+project) {
				continue
			}
			added = append(added, k)
		}
		sort.Strings(added)
		if len(added) > 0 {
			t.Errorf("%s: the engine accumulated objects: %v", n.Name, added)
		}
		if b.sshdChildren != a.sshdChildren || b.ssh22 != a.ssh22 {
			t.Errorf("%s: SSH sessions or connections left: before %s; after %s", n.Name, a, b)
		}
		if b.goroutines > w.goroutines+30 || b.fds > w.fds+30 || b.rssKB > w.rssKB+40*1024 {
			t.Errorf("%s: the engine grows: after 5 applies %s; after %d %s", n.Name, w, soakApplies, b)
		}
	}
	sortedRSS := append([]int(nil), rss...)
	sort.Ints(sortedRSS)
	first, last := maxOf(rss[:10]), maxOf(rss[len(rss)-10:])
	if last > first+first/3 {
		t.Errorf("berth's peak memory grows from run to run: %d kB in the first 10, %d kB in the last 10", first, last)
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	n1 := s2["node1"]
	scenarioFigure(scSoak, "%d applies in %.0fs (median %.2fs); engine objects +0, sshd sessions +0, %d audit records kept; dockerd goroutines %d->%d, rss %d->%d MB (node1); berth peak rss %d MB",
		soakApplies, elapsed.Seconds(), took[len(took)/2].Seconds(), audit, s1["node1"].goroutines, n1.goroutines,
		s1["node1"].rssKB/1024, n1.rssKB/1024, sortedRSS[len(sortedRSS)-1]/1024)
}

func maxOf(l []int) int {
	m := 0
	for _, x := range l {
		m = max(m, x)
	}
	return m
}

// berthRSS runs berth and returns its result and peak resident memory (kB).
func berthRSS(t *testing.T, args ...string) (run, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := execCommand(ctx, testcluster.BuildBerth(t), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := run{out: o.String(), err: e.String()}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	maxRSS := 0
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			maxRSS = int(ru.Maxrss)
		}
	}
	return r, maxRSS
}
