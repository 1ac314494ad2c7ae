package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fanoutPortBase is the first port of the extra sshd endpoints: node1..3
// each listen on fanoutPortBase, +1, ... on their own address.
const fanoutPortBase = 2201

// endpoint is one SSH endpoint of the fan-out: a real node (port 22) or an
// extra sshd in a node's namespaces.
type endpoint struct {
	node string // the cluster node whose engine it reaches
	addr string
	port int
}

// fanout is item 5: berth plan over 3..N endpoints. The extra endpoints are
// sshd processes started in the network and mount namespaces of the
// three nodes' own sshd (so /var/run/docker.sock is the node's engine),
// with the node's host key and the cluster's authorized_keys.
func (b *bench) fanout() error {
	maxN := b.opts.fanout[len(b.opts.fanout)-1]
	sec := b.section("fanout", fmt.Sprintf("5. Gather fan-out: no-op berth plan over 3..%d SSH endpoints (extra sshd on the 3 nodes; engines shared)", maxN))
	sec.note("the nodes past the first three are extra sshd processes in node1..3's namespaces on ports %d.. (round-robin), sharing those nodes' engines: N nodes here are N SSH connections and N gathers, but only 3 engines and 2 CPUs, so the curve shows berth's fan-out cost, not N machines'", fanoutPortBase)
	sec.note("the project has no services (the gather is the same: engine info, containers, images, host ports, volumes per node)")
	if b.opts.fanoutPeers {
		sec.note("peer: OpenSSH 'ssh -i KEY ... NODE true' to every endpoint, a fresh connection each, at most 10 at once (berth's default -parallelism for changes; its reads go 32 wide)")
	} else {
		sec.note("-fanout-peers adds OpenSSH 'ssh true' to every endpoint (10 at once) and berth plan -parallelism N at each point (left out by default for time)")
	}

	// The real nodes first, then the extra ones.
	var eps []endpoint
	for _, n := range b.cluster.Nodes {
		eps = append(eps, endpoint{node: n.Name, addr: n.Addr, port: 22})
	}
	extra := maxN - len(eps)
	if extra > 0 {
		started, err := b.startExtraSSHD(extra)
		eps = append(eps, started...)
		if err != nil {
			return err
		}
		logf("fanout: %d extra sshd running", len(started))
	}
	kh, err := b.fanoutKnownHosts(eps)
	if err != nil {
		return err
	}

	type point struct {
		n   int
		dir string
	}
	var points []point
	for _, n := range b.opts.fanout {
		if n > len(eps) {
			continue
		}
		dir := filepath.Join(b.tmp, fmt.Sprintf("bench-%s-fan%03d", b.id, n))
		var nodes strings.Builder
		for i, e := range eps[:n] {
			fmt.Fprintf(&nodes, "node \"n%03d\" {\n  address       = %q\n  port          = %d\n  user          = %q\n  identity_file = %q\n  known_hosts   = %q\n}\n\n",
				i+1, e.addr, e.port, b.cluster.User, b.cluster.Key, kh)
		}
		if err := writeFile(dir, "nodes.hcl", nodes.String()); err != nil {
			return err
		}
		points = append(points, point{n, dir})
		lbl := fmt.Sprintf("berth plan, %d nodes", n)
		sec.series(fmt.Sprintf("fanout/berth/%d", n), lbl+" (default parallelism: 32 nodes read at once)", "berth", "s", "")
		if b.opts.fanoutPeers {
			if n > 10 {
				sec.series(fmt.Sprintf("fanout/berth-par/%d", n), fmt.Sprintf("%s -parallelism %d", lbl, n), "berth", "s", "")
			}
			sec.series(fmt.Sprintf("fanout/ssh/%d", n), fmt.Sprintf("ssh NODE true to each of %d, 10 at once", n), "openssh", "s", fmt.Sprintf("fanout/berth/%d", n))
		}
	}
	for round := 0; round <= b.opts.rounds && b.ctx.Err() == nil; round++ {
		warm := round == 0
		for _, p := range points {
			// "": berth's default (reads 32 wide).
			variants := []string{""}
			if p.n > 10 && b.opts.fanoutPeers {
				variants = append(variants, strconv.Itoa(p.n))
			}
			for _, par := range variants {
				id := fmt.Sprintf("fanout/berth/%d", p.n)
				args := []string{"plan", "-detailed-exitcode", p.dir}
				if par != "" {
					id = fmt.Sprintf("fanout/berth-par/%d", p.n)
					args = []string{"plan", "-detailed-exitcode", "-parallelism", par, p.dir}
				}
				x := b.findSeries(id)
				r := b.exec(b.ctx, cmdSpec{name: b.berth, args: args, timeout: 3 * time.Minute, log: filepath.Join(b.tmp, "fanout.log")})
				if r.err != nil {
					x.fail(warm, round, r.failure())
				} else {
					x.add(warm, r.dur.Seconds())
				}
			}
			if !b.opts.fanoutPeers {
				continue
			}
			x := b.findSeries(fmt.Sprintf("fanout/ssh/%d", p.n))
			d, err := b.sshAll(eps[:p.n], kh, 10)
			if err != nil {
				x.fail(warm, round, err.Error())
			} else {
				x.add(warm, d.Seconds())
			}
		}
		logf("fanout: round %d/%d done", round, b.opts.rounds)
	}
	if b.opts.trace && len(points) > 0 && b.ctx.Err() == nil {
		logf("fanout: tracing berth plan at %d nodes", points[len(points)-1].n)
		b.traceNote(sec, points[len(points)-1].dir, 3, 10)
	}
	// The marginal cost of a node, from the medians at the ends of the curve.
	if len(points) >= 2 {
		lo, hi := points[0], points[len(points)-1]
		xl, xh := b.findSeries(fmt.Sprintf("fanout/berth/%d", lo.n)), b.findSeries(fmt.Sprintf("fanout/berth/%d", hi.n))
		if len(xl.Samples) > 0 && len(xh.Samples) > 0 {
			ml, mh := median(xl.Samples), median(xh.Samples)
			sec.note("from %d to %d nodes the no-op plan grows from %.2f s to %.2f s: %.0f ms per extra node at -parallelism 10 (%.0f ms of wall time per node per parallel slot)",
				lo.n, hi.n, ml, mh, (mh-ml)/float64(hi.n-lo.n)*1000, (mh-ml)/float64(hi.n-lo.n)*1000*10)
		}
	}
	return nil
}

// sshAll runs "ssh true" against every endpoint, at most par at once, and
// returns the wall time.
func (b *bench) sshAll(eps []endpoint, kh string, par int) (time.Duration, error) {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	for _, e := range eps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := b.exec(b.ctx, cmdSpec{name: "ssh", args: []string{"-F", "/dev/null", "-i", b.cluster.Key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
				"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + kh, "-o", "ControlMaster=no", "-o", "ControlPath=none",
				"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
				"-p", strconv.Itoa(e.port), b.cluster.User + "@" + e.addr, "true"}, timeout: time.Minute})
			if r.err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s:%d: %s", e.addr, e.port, r.failure())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return time.Since(t0), firstErr
}

// startExtraSSHD starts count sshd processes, round-robin over the nodes,
// each with a copy of its node's sshd_config on its own port, in the
// namespaces of the node's sshd, in the foreground (-D) as children of the
// bench so that they are stopped by their pids.
func (b *bench) startExtraSSHD(count int) ([]endpoint, error) {
	dir := filepath.Join(b.tmp, "sshd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	type nodeInfo struct {
		pid  string
		conf string
	}
	infos := map[string]nodeInfo{}
	for _, n := range b.cluster.Nodes {
		nd := filepath.Join(b.cluster.Dir, n.Name)
		pid := strings.TrimSpace(readTrim(filepath.Join(nd, "sshd.pid")))
		if comm := readTrim("/proc/" + pid + "/comm"); pid == "" || comm != "sshd" {
			return nil, fmt.Errorf("%s: its sshd is not running (pid %q); scripts/testcluster up repairs it", n.Name, pid)
		}
		conf, err := os.ReadFile(filepath.Join(nd, "sshd_config"))
		if err != nil {
			return nil, err
		}
		infos[n.Name] = nodeInfo{pid, string(conf)}
	}
	var procs []*exec.Cmd
	var mu sync.Mutex
	b.atCleanup("stop the extra sshd", func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		var errs []string
		for _, p := range procs {
			if p.ProcessState != nil {
				continue
			}
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				p.Process.Kill()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					errs = append(errs, fmt.Sprintf("sshd pid %d does not exit", p.Process.Pid))
				}
			}
		}
		if len(errs) > 0 {
			return errors.New(strings.Join(errs, "; "))
		}
		return nil
	})
	var eps []endpoint
	for i := range count {
		n := b.cluster.Nodes[i%len(b.cluster.Nodes)]
		port := fanoutPortBase + i/len(b.cluster.Nodes)
		info := infos[n.Name]
		var conf strings.Builder
		fmt.Fprintf(&conf, "# extra sshd of scripts/bench for %s\n", n.Name)
		for _, l := range strings.Split(info.conf, "\n") {
			f := strings.Fields(l)
			if len(f) > 0 && (strings.EqualFold(f[0], "ListenAddress") || strings.EqualFold(f[0], "PidFile")) {
				continue
			}
			conf.WriteString(l + "\n")
		}
		fmt.Fprintf(&conf, "ListenAddress %s:%d\nPidFile none\n", n.Addr, port)
		cfg := filepath.Join(dir, fmt.Sprintf("%s-%d.conf", n.Name, port))
		if err := os.WriteFile(cfg, []byte(conf.String()), 0o600); err != nil {
			return eps, err
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(n.Addr, strconv.Itoa(port)), 300*time.Millisecond); err == nil {
			c.Close()
			return eps, fmt.Errorf("%s:%d is in use already (an extra sshd left by an earlier run?)", n.Addr, port)
		}
		cmd := exec.Command("nsenter", "-t", info.pid, "-m", "-n", "-u", "--", "/usr/sbin/sshd", "-D", "-f", cfg, "-E", cfg+".log")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
		runtime.LockOSThread()
		err := cmd.Start()
		runtime.UnlockOSThread()
		if err != nil {
			return eps, fmt.Errorf("start sshd: %w", err)
		}
		mu.Lock()
		procs = append(procs, cmd)
		mu.Unlock()
		eps = append(eps, endpoint{node: n.Name, addr: n.Addr, port: port})
	}
	// Wait for every banner.
	for _, e := range eps {
		addr := net.JoinHostPort(e.addr, strconv.Itoa(e.port))
		err := poll(b.ctx, 50*time.Millisecond, 20*time.Second, func(context.Context) (bool, error) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false, err
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4)
			_, err = c.Read(buf)
			return err == nil && string(buf) == "SSH-", err
		})
		if err != nil {
			return eps, fmt.Errorf("extra sshd %s does not answer: %v (log: %s)", addr, err,
				lastLines(readTrim(filepath.Join(dir, fmt.Sprintf("%s-%d.conf.log", e.node, e.port))), 2))
		}
	}
	return eps, nil
}

// fanoutKnownHosts writes a known_hosts with the cluster's lines and one
// "[addr]:port" line per extra endpoint (the node's host key).
func (b *bench) fanoutKnownHosts(eps []endpoint) (string, error) {
	base, err := os.ReadFile(b.cluster.KnownHosts)
	if err != nil {
		return "", err
	}
	keys := map[string]string{}
	var sb strings.Builder
	sb.Write(base)
	for _, e := range eps {
		if e.port == 22 {
			continue
		}
		k, ok := keys[e.node]
		if !ok {
			pub := readTrim(filepath.Join(b.cluster.Dir, e.node, "ssh_host_ed25519_key.pub"))
			f := strings.Fields(pub)
			if len(f) < 2 {
				return "", fmt.Errorf("%s: no host key", e.node)
			}
			k = f[0] + " " + f[1]
			keys[e.node] = k
		}
		fmt.Fprintf(&sb, "[%s]:%d %s\n", e.addr, e.port, k)
	}
	p := filepath.Join(b.tmp, "fanout_known_hosts")
	return p, os.WriteFile(p, []byte(sb.String()), 0o644)
}
