package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/planner"
)

// Exit codes of apply and destroy (documented in the README).
const (
	exitInterrupted = 130 // Ctrl-C or SIGTERM: rolled back, lock released
)

func init() {
	for _, destroy := range []bool{false, true} {
		register(applyCommand(destroy))
	}
	register(&command{
		name:     "force-unlock",
		synopsis: "Remove a lock left by a run that is gone",
		usage:    "force-unlock [options] LOCK_ID [DIR]",
		help: `
Removes the project's lock with ID LOCK_ID from every reachable node. Use it
only when the run that holds the lock is gone (its ID, holder and pid are in
the error of the apply that found it). A lock left by a killed run on this
same machine is taken over by the next apply without this command.`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			cf := addConnFlags(fs)
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) < 1 || len(args) > 2 {
					return usageErr("force-unlock needs LOCK_ID and optionally DIR")
				}
				dir, _ := dirArg(args[1:])
				cfg, err := loadConfig(s, dir, cf)
				if err != nil {
					return err
				}
				sess := openSession(ctx, s, cfg, cf)
				defer sess.Close()
				nodes, err := sess.ForceUnlock(ctx, args[0])
				if len(nodes) == 0 && err == nil {
					return fmt.Errorf("no lock with ID %s found on any reachable node", args[0])
				}
				if len(nodes) > 0 {
					fmt.Fprintf(s.Out, "Lock %s removed from %s.\n", args[0], strings.Join(nodes, ", "))
				}
				return err
			}
		},
	})
}

func applyCommand(destroy bool) *command {
	c := &command{
		name:     "apply",
		synopsis: "Carry out the changes, with health-gated rolling updates and rollback",
		usage:    "apply [options] [DIR | PLANFILE]",
		help: `
From a directory (default: the current one): takes the project's lock on
every node, gathers, plans, shows the plan and asks for confirmation (type
'yes'; without a terminal, -auto-approve is required), then carries it out.
From a plan file saved by 'berth plan -out': checks that no node changed
since (else refuses: "stale plan"), and applies exactly that plan without
asking.

Replicas start in the plan's batches (nodes in parallel); each counts as
started only when healthy for its update.monitor. Old containers are
stopped and renamed aside, never removed, until every action succeeded. If
anything fails (a replica unhealthy, a node lost, Ctrl-C) every completed
action on every node is undone, unless the failing service has
failure_action = "pause".

Exit status: 0 applied (or nothing to do), 1 failed (rolled back unless it
says otherwise), 130 interrupted by Ctrl-C or SIGTERM (rolled back, lock
released). An interrupt that comes once the commit has begun (every action
done, old containers being removed) no longer rolls back: the apply
finishes and exits 0.`,
	}
	if destroy {
		c.name = "destroy"
		c.synopsis = "Remove every container of the project"
		c.usage = "destroy [options] [DIR]"
		c.help = `
Removes every container of the project from every reachable node, through
the same plan, confirmation, lock and rollback path as apply. Named volumes
(data) are kept unless -volumes is given.

Exit status: as for apply.`
	}
	c.setup = func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
		cf := addConnFlags(fs)
		autoApprove := fs.Bool("auto-approve", false, "Do not ask for confirmation.")
		jsonOut := fs.Bool("json", false, "Print the plan and a stream of events as JSON lines (needs -auto-approve).")
		lockTimeout := fs.Duration("lock-timeout", 0, "Wait up to this long for another run's lock (default: fail at once).")
		recover := fs.String("recover", planner.RecoverRollback, "How to finish an interrupted apply found on the nodes: rollback or forward.")
		var volumes *bool
		if destroy {
			volumes = fs.Bool("volumes", false, "Also remove the named volumes of the removed containers (their data is lost).")
		}
		return func(ctx context.Context, s Streams, args []string) error {
			if len(args) > 1 {
				return usageErr("expected at most one directory or plan file")
			}
			if *recover != planner.RecoverRollback && *recover != planner.RecoverForward {
				return usageErr("-recover must be rollback or forward")
			}
			if *jsonOut && !*autoApprove {
				return usageErr("-json needs -auto-approve")
			}
			target := "."
			if len(args) == 1 {
				target = args[0]
			}
			r := &applyRun{s: s, cf: cf, destroy: destroy, auto: *autoApprove, json: *jsonOut,
				lockTimeout: *lockTimeout, recover: *recover}
			if volumes != nil {
				r.volumes = *volumes
			}
			if !destroy && isPlanFile(target) {
				return r.fromFile(ctx, target)
			}
			return r.fromDir(ctx, target)
		}
	}
	return c
}

// newImageStep makes apply's image step (tests send from a fake engine).
var newImageStep = executor.NewImageStep

type applyRun struct {
	s           Streams
	cf          *connFlags
	destroy     bool
	auto        bool
	json        bool
	volumes     bool
	lockTimeout time.Duration
	recover     string
}

func (r *applyRun) lockInfo(planID string) executor.LockInfo {
	who, host := holder(r.s)
	return executor.LockInfo{ApplyID: executor.NewApplyID(), PlanID: planID, Holder: who, Host: host,
		PID: os.Getpid(), Since: time.Now()}
}

// fromDir: lock, gather, plan, confirm, apply.
func (r *applyRun) fromDir(ctx context.Context, dir string) error {
	cfg, err := loadConfig(r.s, dir, r.cf)
	if err != nil {
		return err
	}
	r.s = redactStreams(r.s, cfg)
	sess := openSession(ctx, r.s, cfg, r.cf)
	defer sess.Close()
	if err := refuseHostKeyMismatch(sess); err != nil {
		return err
	}
	lock, err := sess.Lock(ctx, r.lockInfo(""), r.lockTimeout)
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	var live *planner.Live
	opts, err := gatherAndPlanInputs(ctx, cfg, func() *planner.Live { live = sess.Gather(ctx); return live }, r.destroy, r.recover)
	if err != nil {
		return err
	}
	opts.Interrupted = append(opts.Interrupted, lock.Stale...)
	p, diags := planner.Make(cfg, live, opts)
	if len(diags) > 0 {
		writeDiags(r.s, cfg.Files, diags, errColor(r.s, *r.cf.noColor))
	}
	if diags.HasErrors() {
		return exitCode(1, nil)
	}
	if !p.Empty() {
		// The lock was taken before planning: from now on it names the
		// plan, for whoever finds it held (during the prompt too).
		if err := lock.SetPlan(ctx, p.ID); err != nil {
			return fmt.Errorf("record the plan in the lock: %w (nothing was changed)", err)
		}
	}
	if r.json {
		r.jsonLine(map[string]any{"type": "plan", "plan": p})
	} else if err := (planView{w: r.s.Out, color: !noColor(r.s, *r.cf.noColor)}).show(p); err != nil {
		return err
	}
	if p.Empty() {
		sess.ClearStaleMarkers(ctx, live, lock)
		if !r.json && !r.destroy {
			writeEndpoints(r.s, cfg, p)
		}
		return nil
	}
	if !r.auto {
		if err := r.confirm(); err != nil {
			return err
		}
	}
	return r.run(ctx, sess, cfg, p, live, lock)
}

// fromFile: lock, gather, stale check, apply the saved plan.
func (r *applyRun) fromFile(ctx context.Context, path string) error {
	sp, err := readPlanFile(path)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(r.s, sp.ConfigDir, r.cf)
	if err != nil {
		return fmt.Errorf("the saved plan's configuration in %s must load to supply its nodes and sensitive values", sp.ConfigDir)
	}
	if cfg.Project.Name != sp.Plan.Project {
		return fmt.Errorf("the saved plan is for project %q, but %s now holds project %q", sp.Plan.Project, sp.ConfigDir, cfg.Project.Name)
	}
	r.s = redactStreams(r.s, cfg)
	p := sp.Plan
	if err := planner.FillSecrets(p, cfg); err != nil {
		return err
	}
	sess := openSession(ctx, r.s, cfg, r.cf)
	defer sess.Close()
	if err := refuseHostKeyMismatch(sess); err != nil {
		return err
	}
	lock, err := sess.Lock(ctx, r.lockInfo(p.ID), r.lockTimeout)
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	live := sess.Gather(ctx)
	if err := planner.CheckFresh(p, live); err != nil {
		return err
	}
	if p.Empty() {
		sess.ClearStaleMarkers(ctx, live, lock)
		fmt.Fprintln(r.s.Out, "No changes. The cluster matches the configuration.")
		return nil
	}
	return r.run(ctx, sess, cfg, p, live, lock)
}

func (r *applyRun) confirm() error {
	if !r.s.InTerminal {
		return errors.New("no terminal to confirm on: review the plan and run again with -auto-approve, or apply a saved plan (berth plan -out FILE; berth apply FILE)")
	}
	verb := "perform these actions"
	if r.destroy {
		verb = "destroy every container of this project"
	}
	fmt.Fprintf(r.s.Out, "\nDo you want to %s?\n  berth will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", verb)
	line, _ := bufio.NewReader(r.s.In).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		what := "apply"
		if r.destroy {
			what = "destroy"
		}
		return exitCode(1, errors.New(what+" cancelled: nothing was changed"))
	}
	fmt.Fprintln(r.s.Out)
	return nil
}

func (r *applyRun) jsonLine(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(r.s.Out, "%s\n", b)
}

// run applies p with the lock held, writes the audit record and reports.
func (r *applyRun) run(ctx context.Context, sess *executor.Session, cfg *config.Config, p *planner.Plan, live *planner.Live, lock *executor.Lock) error {
	pr := newProgress(r.s.Out, r.json, r.s.OutTerminal, !noColor(r.s, *r.cf.noColor))
	started := time.Now()
	// Image progress goes to stderr (never the -json stream), redrawn in
	// place only when stderr itself is a terminal; -json gets an event per
	// finished image step instead.
	imgOpts := images.Options{Progress: r.s.Err, Terminal: r.s.ErrTerminal && !r.json}
	if r.json {
		imgOpts.Event = func(ie images.Event) {
			e := executor.ImageEvent(ie)
			e.ApplyID = lock.Info.ApplyID
			pr.event(e)
		}
	}
	imageStep := newImageStep(cfg, sess, imgOpts)
	res, err := sess.Apply(ctx, p, live, lock, executor.ApplyOptions{
		Parallelism:   *r.cf.parallelism,
		Progress:      pr.event,
		Hook:          testHook(r.s),
		RemoveVolumes: r.volumes,
		Images:        imageStep.Run,
		Redact:        redactor(cfg),
	})
	result := "applied"
	var pe *executor.PausedError
	switch {
	case err == nil:
	case errors.As(err, &pe):
		result = "paused"
		// The commands it shows name this configuration.
		pe.Dir, pe.Vars = cfg.Dir, len(r.cf.vars.args) > 0
	case res != nil && res.RolledBack:
		result = "rolled back"
		// Some undo failed: the cluster is not as it was (the next apply
		// recovers what is left), so do not say "rolled back".
		if re := (*executor.RollbackError)(nil); errors.As(err, &re) && len(re.Failed) > 0 {
			result = "rollback incomplete"
		}
	default:
		result = "failed"
	}
	// Every apply leaves its record, whatever its result (also one that
	// failed before any action completed): on every node it locked, which
	// includes every reachable node the plan touches.
	_ = sess.WriteAudit(context.WithoutCancel(ctx), lock.Nodes(), executor.AuditRecord{
		ApplyID: lock.Info.ApplyID, PlanID: p.ID, Holder: lock.Info.Holder, Started: started, Ended: time.Now(),
		Result: result, Actions: len(p.Actions)})
	if r.json {
		// The result line has its time too: with the events' times it
		// bounds the apply's window of changes (the lock is released after).
		doc := map[string]any{"type": "result", "time": time.Now(), "result": result, "apply_id": lock.Info.ApplyID, "plan_id": p.ID}
		if res != nil {
			doc["done"] = res.Done
		}
		// Bytes of image streams sent, per node (absent: nothing sent).
		doc["bytes_sent"] = imageStep.BytesSent()
		if err != nil {
			doc["error"] = err.Error()
		}
		r.jsonLine(doc)
	}
	if err != nil {
		if isInterrupted(ctx, err) {
			return exitCode(exitInterrupted, err)
		}
		return err
	}
	if !r.json {
		add, change, repl, destroy := p.Summary()
		what := "Apply"
		if r.destroy {
			what = "Destroy"
		}
		fmt.Fprintf(r.s.Out, "\n%s complete! Replicas: %d added, %d changed, %d replaced, %d destroyed. (%s)\n",
			what, add, change, repl, destroy, time.Since(started).Round(10*time.Millisecond))
		if !r.destroy {
			writeEndpoints(r.s, cfg, p)
		}
	}
	return nil
}

// writeEndpoints prints where each published port answers.
func writeEndpoints(s Streams, cfg *config.Config, p *planner.Plan) {
	var lines []string
	for _, sp := range p.Services {
		if len(sp.Ports) == 0 {
			continue
		}
		nodes := map[string]bool{}
		for _, n := range sp.Placement {
			nodes[n] = true
		}
		names := make([]string, 0, len(nodes))
		for n := range nodes {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, pt := range sp.Ports {
			for _, nn := range names {
				host := pt.HostIP
				if host == "" || host == "0.0.0.0" {
					host = "localhost"
					if n := cfg.Node(nn); n != nil && !n.IsLocal() {
						host = n.Address
					}
				}
				scheme := "http://"
				if pt.Protocol == "udp" {
					scheme = "udp://"
				}
				lines = append(lines, fmt.Sprintf("  %s: %s%s:%d/  (node %s, port %d)", sp.Name, scheme, host, pt.Published, nn, pt.Target))
			}
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(s.Out, "\nEndpoints:\n%s\n", strings.Join(lines, "\n"))
	}
}
