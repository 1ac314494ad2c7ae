package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/internal/testcluster"
)

// bench holds one run: options, the cluster, the report and the cleanup
// actions registered so far.
type bench struct {
	opts    options
	ctx     context.Context
	started time.Time

	tmp     string // private temporary directory
	berth   string // the berth binary built for this run
	cluster *testcluster.Cluster
	engines map[string]*client.Client // node name -> its engine, from the host
	lock    *os.File                  // shared cluster lock, as e2e test processes hold
	sshWrap string                    // directory with an "ssh" wrapper that reads sshConfig
	sshCfg  string                    // ssh_config for the Docker CLI and compose (key, known_hosts)
	id      string                    // short random id in project names

	report *Report

	mu       sync.Mutex
	cleanups []cleanupStep
}

type cleanupStep struct {
	what string
	fn   func(ctx context.Context) error
}

// atCleanup registers fn to run at the end, last registered first.
func (b *bench) atCleanup(what string, fn func(ctx context.Context) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, cleanupStep{what, fn})
}

// cleanup runs the registered steps in reverse order with a context of its
// own (the run's may be cancelled) and returns what failed.
func (b *bench) cleanup() []error {
	b.mu.Lock()
	steps := b.cleanups
	b.cleanups = nil
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		if b.opts.verbose {
			logf("cleanup: %s", s.what)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					errs = append(errs, fmt.Errorf("%s: panic: %v", s.what, p))
				}
			}()
			if err := s.fn(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.what, err))
			}
		}()
	}
	return errs
}

// result is one finished command.
type result struct {
	dur  time.Duration
	out  string // stdout and stderr, interleaved
	code int    // exit code; -1 when it did not run or was killed
	err  error
}

func (r result) failure() string {
	msg := r.err.Error()
	if tail := lastLines(r.out, 3); tail != "" {
		msg += ": " + tail
	}
	return msg
}

type cmdSpec struct {
	name    string
	args    []string
	env     []string // added to the environment
	dir     string
	timeout time.Duration
	log     string // file to append the output to (besides result.out)
}

// exec runs one command and times it from start to exit. A timeout or a
// cancelled run sends SIGINT first (berth rolls back, compose stops), then
// SIGKILL 60 s later. Children die with SIGTERM if the bench is killed.
func (b *bench) exec(ctx context.Context, s cmdSpec) result {
	if s.timeout == 0 {
		s.timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.name, s.args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), s.env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Stdin = nil
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 60 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if b.opts.verbose {
		logf("$ %s %s", s.name, strings.Join(s.args, " "))
	}
	// Pdeathsig follows the thread that started the child: keep it alive.
	runtime.LockOSThread()
	t0 := time.Now()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err == nil {
		err = cmd.Wait()
	}
	r := result{dur: time.Since(t0), out: out.String(), code: -1}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	if err != nil {
		switch {
		case ctx.Err() == context.DeadlineExceeded:
			r.err = fmt.Errorf("%s: timed out after %s", s.name, s.timeout)
		case b.ctx.Err() != nil:
			r.err = fmt.Errorf("%s: interrupted", s.name)
		default:
			r.err = fmt.Errorf("%s %s: %w", s.name, firstWord(s.args), err)
		}
	}
	if s.log != "" {
		if f, ferr := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
			fmt.Fprintf(f, "\n### %s $ %s %s (%.3fs, exit %d)\n%s", t0.Format("15:04:05.000"), s.name, strings.Join(s.args, " "), r.dur.Seconds(), r.code, r.out)
			f.Close()
		}
	}
	return r
}

func firstWord(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(l)
		// The nodes share the host's root filesystem: a remote login shell
		// may complain about the host's pyenv; that is noise.
		if l == "" || strings.Contains(l, "pyenv") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, " | ")
}

// setup brings the cluster up if needed, takes the shared cluster lock,
// builds berth and records versions.
func (b *bench) setup() error {
	tmp, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	b.tmp = tmp
	b.atCleanup("remove "+tmp, func(context.Context) error {
		if b.opts.keepTmp {
			logf("kept %s", tmp)
			return nil
		}
		return os.RemoveAll(tmp)
	})
	b.id = fmt.Sprintf("%04x", os.Getpid()&0xffff)

	tcDir, err := b.ensureCluster()
	if err != nil {
		return err
	}
	c, err := testcluster.Load(tcDir)
	if err != nil {
		return err
	}
	b.cluster = c
	if err := b.lockCluster(filepath.Join(tcDir, "lock")); err != nil {
		return err
	}
	b.engines = map[string]*client.Client{}
	for _, n := range c.Nodes {
		cli, err := client.NewClientWithOpts(client.WithHost(n.DockerHost), client.WithAPIVersionNegotiation())
		if err != nil {
			return err
		}
		b.engines[n.Name] = cli
	}

	// berth, built once.
	b.berth = filepath.Join(tmp, "berth")
	version := "bench-" + gitDescribe(b.opts.root)
	logf("building berth (%s)", version)
	r := b.exec(b.ctx, cmdSpec{name: "go", args: []string{"build", "-o", b.berth, "-ldflags", "-X main.Version=" + version, "./cmd/berth"}, dir: b.opts.root, timeout: 5 * time.Minute})
	if r.err != nil {
		return fmt.Errorf("build berth: %s", r.failure())
	}

	// The Docker CLI's ssh:// transport and compose's both run "ssh" from
	// PATH with no way to pass options (docker/cli#1463, #6088), and OpenSSH
	// reads ~/.ssh/config from the passwd entry, not $HOME: a wrapper first
	// in PATH adds -F with the cluster's key and known_hosts.
	b.sshWrap = filepath.Join(tmp, "sshwrap")
	b.sshCfg = filepath.Join(tmp, "ssh_config")
	if err := os.MkdirAll(b.sshWrap, 0o755); err != nil {
		return err
	}
	var cfg strings.Builder
	cfg.WriteString("Host")
	for _, n := range c.Nodes {
		cfg.WriteString(" " + n.Addr)
	}
	fmt.Fprintf(&cfg, "\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  ControlMaster no\n  ControlPath none\n  BatchMode yes\n  LogLevel ERROR\n", c.User, c.Key, c.KnownHosts)
	if err := os.WriteFile(b.sshCfg, []byte(cfg.String()), 0o644); err != nil {
		return err
	}
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		return err
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -F %s \"$@\"\n", sshPath, b.sshCfg)
	if err := os.WriteFile(filepath.Join(b.sshWrap, "ssh"), []byte(wrapper), 0o755); err != nil {
		return err
	}

	b.report = newReport(b)
	return nil
}

// ensureCluster runs scripts/testcluster up unless status says it is up, and
// returns the cluster directory. A cluster it brings up (or tried to) is
// taken down at the end, so that the machine is left as found.
func (b *bench) ensureCluster() (string, error) {
	script := filepath.Join(b.opts.root, "scripts", "testcluster")
	r := b.exec(b.ctx, cmdSpec{name: script, args: []string{"status"}, timeout: time.Minute})
	if r.err != nil {
		logf("test cluster not up; running scripts/testcluster up (taken down again at the end)")
		b.atCleanup("scripts/testcluster down (the bench brought the cluster up)", func(ctx context.Context) error {
			return b.clusterDown(ctx, script, filepath.Join(b.opts.root, ".testcluster"))
		})
		u := b.exec(b.ctx, cmdSpec{name: script, args: []string{"up"}, timeout: 8 * time.Minute})
		if u.err != nil {
			return "", fmt.Errorf("scripts/testcluster up: %s", u.failure())
		}
		r = b.exec(b.ctx, cmdSpec{name: script, args: []string{"status"}, timeout: time.Minute})
		if r.err != nil {
			return "", fmt.Errorf("scripts/testcluster status after up: %s", r.failure())
		}
	}
	for _, l := range strings.Split(r.out, "\n") {
		if d, ok := strings.CutPrefix(l, "cluster dir: "); ok {
			return strings.TrimSpace(d), nil
		}
	}
	if d := os.Getenv("BERTH_TC_DIR"); d != "" {
		return d, nil
	}
	return filepath.Join(b.opts.root, ".testcluster"), nil
}

// clusterDown takes down the cluster the bench brought up, unless test
// processes started meanwhile use it: they hold its lock (shared), so the
// bench waits up to a minute for the lock exclusively, and otherwise leaves
// the cluster up and says so. (It runs after the bench's own shared lock is
// released.)
func (b *bench) clusterDown(ctx context.Context, script, dir string) error {
	if f, err := os.Open(filepath.Join(dir, "lock")); err == nil {
		defer f.Close()
		deadline := time.Now().Add(time.Minute)
		for {
			err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				return fmt.Errorf("lock %s: %w", f.Name(), err)
			}
			if time.Now().After(deadline) {
				logf("the test cluster the bench brought up is in use by other test processes: left up (scripts/testcluster down removes it)")
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	logf("taking the test cluster down (the bench brought it up)")
	r := b.exec(ctx, cmdSpec{name: script, args: []string{"down"}, timeout: 3 * time.Minute})
	if r.err != nil {
		return fmt.Errorf("scripts/testcluster down: %s", r.failure())
	}
	return nil
}

// lockCluster takes the shared lock every e2e test process holds, so that no
// test injects a fault (which takes it exclusively) while the bench runs.
func (b *bench) lockCluster(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return fmt.Errorf("shared lock on %s: %v", path, err)
		}
		select {
		case <-b.ctx.Done():
			f.Close()
			return b.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	b.lock = f
	b.atCleanup("release the cluster lock", func(context.Context) error { return f.Close() })
	return nil
}

func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// writeFile writes content to dir/name, creating dir.
func writeFile(dir, name, content string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
}

// poll calls f every interval until it returns true, an error, or timeout.
func poll(ctx context.Context, interval, timeout time.Duration, f func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := f(ctx)
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// exclusive turns the bench's cluster lock exclusive, the way a test that
// changes the nodes takes it (internal/testcluster): it waits in the
// waiting room (DIR/lock.wait), so that test processes step out of the
// cluster at their next test, then for the lock itself. The lifecycle's
// swarm turns (swarm init on node1) need the nodes alone. release turns it
// back to shared.
func (b *bench) exclusive(timeout time.Duration) (release func(), err error) {
	room, err := os.OpenFile(b.lock.Name()+".wait", os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	defer room.Close()
	try := func(f *os.File, how int) error {
		deadline := time.Now().Add(timeout)
		for {
			err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
			if err == nil {
				return nil
			}
			if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
				return fmt.Errorf("lock %s: %w", f.Name(), err)
			}
			select {
			case <-b.ctx.Done():
				return b.ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	logf("waiting for the test cluster alone (other test processes finish their tests first)")
	if err := try(room, syscall.LOCK_EX); err != nil {
		return nil, err
	}
	if err := try(b.lock, syscall.LOCK_EX); err != nil {
		try(b.lock, syscall.LOCK_SH)
		return nil, err
	}
	return func() { syscall.Flock(int(b.lock.Fd()), syscall.LOCK_SH) }, nil
}
