package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/internal/trace"
)

// connFlags are the flags of every command that talks to the nodes.
type connFlags struct {
	parallelism   *int
	trustNewHosts *bool
	noColor       *bool
	vars          *varFlags
}

func addConnFlags(fs *flag.FlagSet) *connFlags {
	return &connFlags{
		parallelism: fs.Int("parallelism", 0, fmt.Sprintf("Work on at most N nodes at once (default: %d when connecting to and reading the nodes, %d when changing them).",
			executor.DefaultReadParallelism, executor.DefaultParallelism)),
		trustNewHosts: fs.Bool("trust-new-hosts", false, "Accept and record the host key of a node not yet in known_hosts (never a changed key)."),
		noColor:       fs.Bool("no-color", false, "Do not colour the output (also: NO_COLOR)."),
		vars:          addVarFlags(fs),
	}
}

// loadConfig reads the configuration, printing diagnostics. It fails (with
// the diagnostics already printed) on errors.
func loadConfig(s Streams, dir string, cf *connFlags) (*config.Config, error) {
	end := trace.Span("config load")
	cfg, diags := config.Load(dir, cf.vars.inputs(s))
	end()
	var files map[string]*hcl.File
	if cfg != nil {
		files = cfg.Files
	}
	if len(diags) > 0 {
		writeDiags(s, files, diags, errColor(s, *cf.noColor))
	}
	if diags.HasErrors() || cfg == nil {
		return nil, exitCode(1, nil)
	}
	return cfg, nil
}

// newSession opens the session of a command, localImageFacts reads the
// local engine's images and newImageStep makes apply's image step; tests
// replace them to run the commands over fakes.
var (
	newSession      = executor.Open
	localImageFacts func(ctx context.Context, cfg *config.Config, withLocal bool) (images.Facts, error) // nil: the session's local engine
	newImageStep    = executor.NewImageStep
)

// errColor says whether to colour what goes to stderr (diagnostics): as
// noColor decides for stdout, but by whether stderr is a terminal.
func errColor(s Streams, noColorFlag bool) bool {
	s.OutTerminal = s.ErrTerminal
	return !noColor(s, noColorFlag)
}

// request is the operation op over cfg's nodes as the flags say, with the
// image work bound to the executor's images.
func (cf *connFlags) request(s Streams, cfg *config.Config, op executor.Op) executor.Request {
	return executor.Request{
		Op: op,
		Session: executor.Options{
			Parallelism: *cf.parallelism,
			SSH: transport.Options{
				TrustNewHosts: *cf.trustNewHosts,
				Environ:       s.Environ,
				Stdin:         s.In,
				Stderr:        s.Err,
				IsTerminal:    s.InTerminal,
			},
		},
		Open:         newSession,
		Redact:       redactor(cfg),
		ImageFacts:   localImageFacts,
		NewImageStep: newImageStep,
	}
}

// redactor replaces every sensitive value with "(sensitive value)".
func redactor(cfg *config.Config) func(string) string {
	vals := make([]string, 0, len(cfg.SensitiveValues))
	for _, v := range cfg.SensitiveValues {
		if len(v) >= 3 {
			vals = append(vals, v)
		}
	}
	return func(s string) string {
		for _, v := range vals {
			s = strings.ReplaceAll(s, v, "(sensitive value)")
		}
		return s
	}
}

// redactWriter redacts everything written through it, line-buffered so a
// value split across writes is still caught.
type redactWriter struct {
	w      io.Writer
	redact func(string) string
}

func (r *redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redactStreams wraps s's outputs so no sensitive value of cfg reaches them.
func redactStreams(s Streams, cfg *config.Config) Streams {
	if len(cfg.SensitiveValues) == 0 {
		return s
	}
	r := redactor(cfg)
	s.Out = &redactWriter{w: s.Out, redact: r}
	s.Err = &redactWriter{w: s.Err, redact: r}
	return s
}

// testHook returns the kill hook set by BERTH_TEST_KILL_AT=POINT[#N]
// (test-only): at the Nth time apply reaches boundary POINT, berth sends
// itself BERTH_TEST_KILL_SIGNAL (KILL by default, or INT).
//
// BERTH_TEST_KILL_AT=trace prints "berth: boundary POINT #N" on stderr at
// every boundary instead, so a test can enumerate them.
func testHook(s Streams) func(string) {
	kill, pause := killHook(s), pauseHook(s)
	switch {
	case kill == nil:
		return pause
	case pause == nil:
		return kill
	}
	return func(p string) {
		pause(p)
		kill(p)
	}
}

// pauseHook returns the pause hook set by BERTH_TEST_PAUSE_AT=POINT[#N]
// and BERTH_TEST_PAUSE_FILE=PATH (test-only): at the Nth time apply
// reaches boundary POINT, berth creates PATH and waits (up to two minutes)
// until the test removed it, so that the test can change the cluster at
// that exact moment.
func pauseHook(s Streams) func(string) {
	spec, path := s.Getenv("BERTH_TEST_PAUSE_AT"), s.Getenv("BERTH_TEST_PAUSE_FILE")
	if spec == "" || path == "" {
		return nil
	}
	point, nth := splitHookSpec(spec)
	var mu sync.Mutex
	count := 0
	return func(p string) {
		if p != point {
			return
		}
		mu.Lock()
		count++
		n := count
		mu.Unlock()
		if n != nth {
			return
		}
		fmt.Fprintf(s.Err, "berth: test hook: paused at %s #%d until %s is removed\n", p, nth, path)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			fmt.Fprintf(s.Err, "berth: test hook: %v\n", err)
			return
		}
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, err := os.Stat(path); os.IsNotExist(err) {
				return
			}
		}
	}
}

func splitHookSpec(spec string) (point string, nth int) {
	point, nth = spec, 1
	if i := strings.LastIndex(spec, "#"); i >= 0 {
		point = spec[:i]
		fmt.Sscanf(spec[i+1:], "%d", &nth)
	}
	return point, nth
}

func killHook(s Streams) func(string) {
	spec := s.Getenv("BERTH_TEST_KILL_AT")
	if spec == "" {
		return nil
	}
	if spec == "trace" {
		var mu sync.Mutex
		seen := map[string]int{}
		return func(p string) {
			mu.Lock()
			seen[p]++
			fmt.Fprintf(s.Err, "berth: boundary %s #%d\n", p, seen[p])
			mu.Unlock()
		}
	}
	point, nth := splitHookSpec(spec)
	sig := syscall.SIGKILL
	if strings.EqualFold(s.Getenv("BERTH_TEST_KILL_SIGNAL"), "INT") {
		sig = syscall.SIGINT
	}
	var mu sync.Mutex
	count := 0
	return func(p string) {
		if p != point {
			return
		}
		mu.Lock()
		count++
		this := count // boundaries are reached concurrently
		mu.Unlock()
		if this == nth {
			fmt.Fprintf(s.Err, "berth: test hook: sending %v to myself at %s #%d\n", sig, p, nth)
			if sig == syscall.SIGKILL {
				syscall.Kill(os.Getpid(), sig)
				time.Sleep(time.Minute)
			}
			// Return only once the signal has been delivered (and the
			// run's context cancelled), as if Ctrl-C had been pressed just
			// before this boundary: otherwise the apply races past the
			// next cancellation check and the test sees a random outcome.
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, sig)
			syscall.Kill(os.Getpid(), sig)
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
			}
			signal.Stop(ch)
			time.Sleep(20 * time.Millisecond) // let signal.NotifyContext cancel
		}
	}
}
