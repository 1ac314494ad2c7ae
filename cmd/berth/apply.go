package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
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
				req := cf.request(s, cfg, executor.OpForceUnlock)
				req.LockID = args[0]
				o, err := executor.Run(ctx, cfg, req, nil)
				if len(o.Unlocked) > 0 {
					fmt.Fprintf(s.Out, "Lock %s removed from %s.\n", args[0], strings.Join(o.Unlocked, ", "))
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

A node that cannot be read makes the plan partial (it covers the other
nodes only): apply refuses it, with nothing changed, unless
-allow-unreachable is given. -reschedule-unreachable (which implies it)
also places the replicas that may run there on reachable nodes, except
those with a named volume; once the node is back, the next apply removes
the duplicates there.

A node whose block was removed but that the project's last apply recorded
(every apply records the project's nodes in its audit record) is read at
its recorded address: its replicas move to the configured nodes and the
project's other containers there are removed; its volumes and other
containers stay. If it cannot be reached the plan says so, and the next
apply tries again.

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
(data) are kept unless -volumes is given. With a node that cannot be read,
destroy refuses unless -allow-unreachable is given (its containers would
stay).

Exit status: as for apply.`
	}
	c.setup = func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
		cf := addConnFlags(fs)
		af := addApplyFlags(fs)
		var volumes, reschedule *bool
		if destroy {
			volumes = fs.Bool("volumes", false, "Also remove the named volumes of the removed containers (their data is lost).")
		} else {
			reschedule = fs.Bool("reschedule-unreachable", false, "Place the replicas that may run on an unreachable node on reachable nodes (not those with a named volume); implies -allow-unreachable.")
		}
		return func(ctx context.Context, s Streams, args []string) error {
			if len(args) > 1 {
				return usageErr("expected at most one directory or plan file")
			}
			r, err := af.run(s, cf)
			if err != nil {
				return err
			}
			r.destroy = destroy
			target := "."
			if len(args) == 1 {
				target = args[0]
			}
			if volumes != nil {
				r.volumes = *volumes
			}
			if reschedule != nil && *reschedule {
				r.reschedule, r.allowUnreachable = true, true
			}
			if !destroy && isPlanFile(target) {
				return r.fromFile(ctx, target)
			}
			return r.fromDir(ctx, target)
		}
	}
	return c
}

// applyFlags are the flags apply, destroy and rollback share.
type applyFlags struct {
	autoApprove, json, allowUnreachable *bool
	lockTimeout                         *time.Duration
	recover                             *string
}

func addApplyFlags(fs *flag.FlagSet) *applyFlags {
	return &applyFlags{
		autoApprove:      fs.Bool("auto-approve", false, "Do not ask for confirmation."),
		json:             fs.Bool("json", false, "Print the plan and a stream of events as JSON lines (needs -auto-approve)."),
		lockTimeout:      fs.Duration("lock-timeout", 0, "Wait up to this long for another run's lock (default: fail at once)."),
		recover:          fs.String("recover", planner.RecoverRollback, "How to finish an interrupted apply found on the nodes: rollback or forward."),
		allowUnreachable: fs.Bool("allow-unreachable", false, "Carry out a plan made without the nodes that could not be read (else refuse it)."),
	}
}

// run checks the flags and returns the run they ask for.
func (af *applyFlags) run(s Streams, cf *connFlags) (*applyRun, error) {
	if *af.recover != planner.RecoverRollback && *af.recover != planner.RecoverForward {
		return nil, usageErr("-recover must be rollback or forward")
	}
	if *af.json && !*af.autoApprove {
		return nil, usageErr("-json needs -auto-approve")
	}
	return &applyRun{s: s, cf: cf, auto: *af.autoApprove, json: *af.json,
		lockTimeout: *af.lockTimeout, recover: *af.recover, allowUnreachable: *af.allowUnreachable}, nil
}

// applyRun is one apply or destroy: the request as the flags say, run
// through the view they pick.
type applyRun struct {
	s           Streams
	cf          *connFlags
	destroy     bool
	auto        bool
	json        bool
	volumes     bool
	lockTimeout time.Duration
	recover     string
	// allowUnreachable carries out a plan made without some nodes.
	allowUnreachable bool
	// reschedule places the replicas of unreachable nodes elsewhere.
	reschedule bool
	// rollback plans the revisions of an earlier apply (rollbackTo, else
	// the one before the latest) instead of the configuration's.
	rollback   bool
	rollbackTo string
}

// fromDir: lock, gather, plan, confirm, apply.
func (r *applyRun) fromDir(ctx context.Context, dir string) error {
	cfg, err := loadConfig(r.s, dir, r.cf)
	if err != nil {
		return err
	}
	op := executor.OpApply
	if r.destroy {
		op = executor.OpDestroy
	}
	return r.run(ctx, cfg, op, nil)
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
	return r.run(ctx, cfg, executor.OpApplySaved, sp.Plan)
}

// run runs the operation over cfg's nodes and shows its result.
func (r *applyRun) run(ctx context.Context, cfg *config.Config, op executor.Op, saved *planner.Plan) error {
	s := redactStreams(r.s, cfg)
	req := r.cf.request(s, cfg, op)
	req.Saved, req.Recover, req.AutoApprove, req.LockTimeout, req.RemoveVolumes = saved, r.recover, r.auto, r.lockTimeout, r.volumes
	req.AllowUnreachable, req.RescheduleUnreachable = r.allowUnreachable, r.reschedule
	req.Rollback, req.RollbackTo = r.rollback, r.rollbackTo
	req.Hook = testHook(s)
	view := newApplyView(s, r.json, *r.cf.noColor,
		applyContext{cfg: cfg, destroy: r.destroy, saved: saved != nil, vars: len(r.cf.vars.args) > 0})
	o, err := runOp(ctx, cfg, req, view)
	view.Result(o, err)
	return opError(o, err, view.ErrorText)
}

// writeEndpoints prints where each published port answers.
func orSlash(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

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
			if pt.Ingress() {
				// Served by the proxy on every ingress node.
				if p.Ingress == nil {
					continue
				}
				scheme := "http://"
				if p.Ingress.TLS == "internal" || p.Ingress.TLS == "auto" {
					scheme = "https://"
				}
				for _, nn := range p.Ingress.NodeNames() {
					host := "localhost"
					if n := cfg.Node(nn); n != nil && !n.IsLocal() {
						host = n.Address
					}
					if pt.HostName != "" {
						host = pt.HostName
					}
					lines = append(lines, fmt.Sprintf("  %s: %s%s:%d%s  (ingress on node %s, port %d)", sp.Name, scheme, host, pt.Published, orSlash(pt.Path), nn, pt.Target))
				}
				continue
			}
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
