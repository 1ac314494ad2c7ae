// Command bench measures berth against its peers on the local test cluster:
// OpenSSH, the Docker CLI's ssh:// transport, docker-compose v1 and
// docker stack deploy. scripts/bench builds and runs it; see usage below.
//
// Only ratios measured in the same run mean much on a shared machine, so
// every comparison runs its commands interleaved (A B A B ...), a warm-up
// round first, and reports medians, min-max and berth/peer.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const usage = `Usage: scripts/bench [options]

Measures berth against its peers on the local three-node test cluster
(scripts/testcluster; brought up when it is not) and prints a table of
medians, min-max and berth/peer ratios, also written as JSON (-o).

Sections (-only, comma-separated; default all):
  noop      no-op 'berth plan' over 3 nodes vs 'ssh node1 true' (fresh
            connection) vs 'docker -H ssh://node ps' for each node in turn
  lifecycle 30 replicas of berth-test/echo: deploy from nothing (v1), rolling
            update to v2, removal; berth over 3 nodes vs docker-compose v1 and
            docker stack deploy (single-node swarm) on node1's engine, and
            berth with the Swarm target on that same swarm (berth-swarm);
            -lifecycle-tools picks tools; it takes the cluster alone
  independent three services of 1 replica that do not depend on each other
            (they roll out together) vs one of them alone, first deploy
  planner   the pure planner at 100/1,000/10,000 nodes (go test -bench)
  fanout    berth plan over 3..N nodes: extra sshd endpoints on the three
            nodes (engines shared); -fanout-peers adds OpenSSH 'ssh true' to
            each node
  ingress   the routing mesh (a Caddy proxy per node, berth-test/caddy):
            latency p50/p99 of GETs through an ingress port vs straight to a
            replica's backend port (keep-alive and new connections), and a
            rolling update v1 <-> v2 under load through every node: ingress
            (3 and 6 replicas) vs host mode (3); ports 18470-18472

Most of a run is lifecycle (6 rounds of three tools, ~2 min a round on the
shared 2-CPU machine it was written on); -only and -rounds select less.

The machine is left as found, also on failure or Ctrl-C: berth projects
destroyed, compose projects down, stacks removed, swarm left, extra sshd
stopped, temporary files removed, and a test cluster the bench brought up
taken down again (unless other test processes use it by then).

Options:
`

type options struct {
	root        string
	out         string
	rounds      int
	only        map[string]bool
	monitor     string
	parallelism int
	fanout      []int
	composeSSH  int
	fanoutPeers bool
	trace       bool
	keepTmp     bool
	verbose     bool
	// lifeTools are the lifecycle's tools to run (nil: all).
	lifeTools map[string]bool

	ingressRequests int // GETs per round and kind in the ingress latency
	ingressRate     int // requests a second to every node during the ingress updates
}

var sections = []string{"noop", "lifecycle", "independent", "planner", "fanout", "ingress"}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	var only, fan string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.root, "root", "", "repository root (default: found from the working directory)")
	fs.StringVar(&o.out, "o", "", "write the results as JSON to `FILE` (default .bench/bench-DATE.json)")
	fs.IntVar(&o.rounds, "rounds", 5, "measured rounds after the warm-up round (at least 1)")
	fs.StringVar(&only, "only", strings.Join(sections, ","), "run only these `SECTIONS`")
	fs.StringVar(&o.monitor, "monitor", "1s", "update.monitor for berth and the stack (berth's default is 5s)")
	fs.IntVar(&o.parallelism, "update-parallelism", 10, "update.parallelism for berth and the stack")
	tools := fs.String("lifecycle-tools", "", "lifecycle: run only these `TOOLS` (comma-separated: berth, compose, stack, berth-swarm; default all)")
	fs.StringVar(&fan, "fanout", "3,10,25,50,100,200", "node counts for the fan-out curve (3 real nodes plus extra sshd endpoints)")
	fs.BoolVar(&o.fanoutPeers, "fanout-peers", false, "fan-out: also time OpenSSH 'ssh true' to every node (10 at once) and berth plan -parallelism N")
	fs.IntVar(&o.composeSSH, "compose-ssh", 0, "also run docker-compose over ssh:// in every lifecycle round with COMPOSE_PARALLEL_LIMIT=`N` (slow; 0: one attempt with compose's defaults only)")
	fs.BoolVar(&o.trace, "trace", false, "after the noop and fanout rounds, run berth plan with BERTH_TRACE=1 (see -trace-plan) and add where its time goes to the notes")
	fs.IntVar(&o.ingressRequests, "ingress-requests", 1000, "ingress: sequential GETs per round, kind (keep-alive, new connection) and path (ingress, direct)")
	fs.IntVar(&o.ingressRate, "ingress-rate", 25, "ingress: requests a second to every node's port while an update runs")
	fs.BoolVar(&o.keepTmp, "keep-tmp", false, "keep the temporary directory (configs, logs) for inspection")
	fs.BoolVar(&o.verbose, "v", false, "print every command as it runs")
	traceDir := fs.String("trace-plan", "", "instead of the bench: run 'berth plan `DIR`' with BERTH_TRACE=1 (berth built from -root) and print where its time goes, phase by phase")
	traceRuns := fs.Int("trace-runs", 9, "runs of -trace-plan")
	tracePar := fs.Int("trace-parallelism", 10, "-parallelism of -trace-plan")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *traceDir != "" {
		if o.root == "" {
			r, err := repoRoot()
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				return 2
			}
			o.root = r
		}
		tmp, err := os.MkdirTemp("", "berth-trace-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		bin := filepath.Join(tmp, "berth")
		build := exec.Command("go", "build", "-o", bin, "./cmd/berth")
		build.Dir, build.Stderr = o.root, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: build berth: %v\n", err)
			return 1
		}
		if err := tracePlan(context.Background(), os.Stdout, bin, *traceDir, *traceRuns, *tracePar); err != nil {
			fmt.Fprintf(os.Stderr, "bench: trace: %v\n", err)
			return 1
		}
		return 0
	}
	if o.ingressRequests < 1 || o.ingressRate < 1 {
		fmt.Fprintln(os.Stderr, "bench: -ingress-requests and -ingress-rate must be at least 1")
		return 2
	}
	if o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: -rounds must be at least 1")
		return 2
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(sections, s) {
			fmt.Fprintf(os.Stderr, "bench: unknown section %q (sections: %s)\n", s, strings.Join(sections, ", "))
			return 2
		}
		o.only[s] = true
	}
	for _, s := range strings.Split(*tools, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains([]string{"berth", "compose", "stack", "berth-swarm"}, s) {
			fmt.Fprintf(os.Stderr, "bench: unknown lifecycle tool %q (berth, compose, stack, berth-swarm)\n", s)
			return 2
		}
		if o.lifeTools == nil {
			o.lifeTools = map[string]bool{}
		}
		o.lifeTools[s] = true
	}
	for _, s := range strings.Split(fan, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d", &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: bad -fanout value %q\n", s)
			return 2
		}
		o.fanout = append(o.fanout, n)
	}
	slices.Sort(o.fanout)
	o.fanout = slices.Compact(o.fanout)
	if d, err := time.ParseDuration(o.monitor); err != nil || d < 0 {
		fmt.Fprintf(os.Stderr, "bench: bad -monitor %q\n", o.monitor)
		return 2
	}
	if o.root == "" {
		r, err := repoRoot()
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 2
		}
		o.root = r
	}
	if o.out == "" {
		o.out = filepath.Join(o.root, ".bench", "bench-"+time.Now().Format("20060102-150405")+".json")
	}

	// The first SIGINT/SIGTERM cancels the run (the child that has the
	// terminal gets it too); cleanup still runs. A third one gives up on
	// cleanup.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		n := 0
		for s := range sigs {
			n++
			switch n {
			case 1:
				logf("%v: stopping; cleaning up (twice more to abandon the cleanup)", s)
				cancel()
			case 2:
				logf("%v: still cleaning up so that the machine is left as found", s)
			default:
				logf("%v: abandoning the cleanup; see the list above for what may be left", s)
				os.Exit(130)
			}
		}
	}()

	b := &bench{opts: o, ctx: ctx, started: time.Now()}
	code := b.main()
	if ctx.Err() != nil && code == 0 {
		code = 130
	}
	return code
}

// main runs the selected sections; cleanup runs whatever happens.
func (b *bench) main() (code int) {
	defer func() {
		if p := recover(); p != nil {
			logf("panic: %v", p)
			code = 1
		}
		if errs := b.cleanup(); len(errs) > 0 {
			for _, e := range errs {
				logf("cleanup: %v", e)
			}
			logf("cleanup was incomplete: the items above may be left on the machine")
			code = 1
		}
	}()
	if err := b.setup(); err != nil {
		logf("setup: %v", err)
		return 1
	}
	b.report.Settings = map[string]any{
		"rounds": b.opts.rounds, "warmup_rounds": 1, "update_monitor": b.opts.monitor,
		"update_parallelism": b.opts.parallelism, "update_order": "start-first",
		"health":   "berth: tcp 8080 every 1s; compose/stack: HEALTHCHECK /echo check every 1s",
		"replicas": lifeReplicas, "fanout_nodes": b.opts.fanout, "compose_ssh_parallel_limit": b.opts.composeSSH,
		"ingress_requests": b.opts.ingressRequests, "ingress_rate_per_node": b.opts.ingressRate, "ingress_image": ingressProxyImage,
	}
	type sec struct {
		id string
		fn func() error
	}
	failed := false
	for _, s := range []sec{{"noop", b.noop}, {"lifecycle", b.lifecycle}, {"independent", b.independent}, {"planner", b.planner}, {"fanout", b.fanout}, {"ingress", b.ingress}} {
		if !b.opts.only[s.id] {
			continue
		}
		if b.ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		logf("== %s", s.id)
		err := s.fn()
		b.report.SectionSeconds[s.id] = round3(time.Since(t0).Seconds())
		if err != nil {
			logf("%s: %v", s.id, err)
			b.report.Errors = append(b.report.Errors, s.id+": "+err.Error())
			failed = true
		}
		b.writeJSON() // partial results survive a later failure
	}
	b.finish()
	b.printTable(os.Stdout)
	if err := b.writeJSON(); err != nil {
		logf("write %s: %v", b.opts.out, err)
		return 1
	}
	fmt.Printf("\nJSON: %s\n", b.opts.out)
	if failed || b.ctx.Err() != nil {
		return 1
	}
	return 0
}

func (b *bench) writeJSON() error {
	if b.report == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(b.opts.out), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(b.report, "", "  ")
	if err != nil {
		return err
	}
	tmp := b.opts.out + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, b.opts.out)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// repoRoot walks up from the working directory to go.mod.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("no go.mod above the working directory; pass -root")
		}
		d = p
	}
}
