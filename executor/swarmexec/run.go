// Package swarmexec carries out berth's operations for a project whose
// engine is Docker Swarm (project { swarm { managers = [...] } }): it
// connects to the first manager that answers (over SSH like any node, the
// Docker API over the same connection), gathers the project's services,
// tasks, nodes and network, plans with planner/swarmplan, and applies:
// node labels, the overlay network, then each service in depends_on order,
// following its tasks until it converged, and Swarm's own rollback (plus
// berth's, for the services the apply changed before) on failure.
//
// It decides nothing itself: what changes is the plan's. It uses the
// executor core for the session pieces it shares with berth's own engine
// (the lock and audit volumes on the manager, the view and the outcome).
package swarmexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/planner/swarmplan"
)

// manager is the Swarm manager berth talks to for the run.
type manager struct {
	name string
	node *engine.Node
	cli  *client.Client
	// tried holds the managers that did not answer before it.
	tried []string
	pool  *transport.Pool
}

func (m *manager) Close() {
	m.node.Close()
	if m.pool != nil {
		m.pool.Close()
	}
}

// NoManagerError says that no configured manager answered as an active
// Swarm manager.
type NoManagerError struct {
	Errs []string
}

func (e *NoManagerError) Error() string {
	return "no swarm manager answered, so nothing was read or changed:\n  - " + strings.Join(e.Errs, "\n  - ")
}

// connect returns the first manager of cfg's swarm block that answers and
// is an active manager; the others are tried in order.
func connect(ctx context.Context, cfg *config.Config, opts executor.Options) (*manager, error) {
	sshOpts := opts.SSH.WithDefaults()
	pool := transport.NewPool(sshOpts)
	resolver, rerr := transport.NewResolver(cfg, sshOpts)
	timeout := opts.RequestTimeout
	if timeout <= 0 {
		timeout = executor.DefaultRequestTimeout
	}
	environ := sshOpts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	var errs []string
	for _, name := range cfg.Project.Swarm.Managers {
		n := cfg.Node(name)
		node, err := open(ctx, n, resolver, rerr, pool, environ, timeout)
		if err == nil {
			err = checkManager(ctx, node.Client())
			if err != nil {
				node.Close()
			}
		}
		if err != nil {
			var he *transport.HostKeyError
			if errors.As(err, &he) && !he.Unknown {
				pool.Close()
				return nil, &executor.HostKeyMismatchError{Errs: []error{fmt.Errorf("%s: %w", name, err)}}
			}
			errs = append(errs, name+": "+oneLine(err.Error()))
			continue
		}
		return &manager{name: name, node: node, cli: node.Client(), tried: errs, pool: pool}, nil
	}
	pool.Close()
	return nil, &NoManagerError{Errs: errs}
}

func open(ctx context.Context, n *config.Node, r *transport.Resolver, rerr error, pool *transport.Pool, environ []string, timeout time.Duration) (*engine.Node, error) {
	if n.IsLocal() {
		sock, err := engine.LocalSocket(n, environ)
		if err != nil {
			return nil, err
		}
		return engine.NewLocal(ctx, n.Name, sock, timeout)
	}
	if rerr != nil {
		return nil, rerr
	}
	t, err := r.Node(n)
	if err != nil {
		return nil, err
	}
	c, err := pool.Get(ctx, t)
	if err != nil {
		return nil, err
	}
	socket := n.DockerSocket
	if socket == "" {
		socket = config.DefaultDockerSocket
	}
	return engine.NewSSH(ctx, n.Name, c, socket, timeout)
}

// checkManager fails unless the engine is an active Swarm manager.
func checkManager(ctx context.Context, cli *client.Client) error {
	info, err := cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("docker info: %w", err)
	}
	if info.Swarm.LocalNodeState != "active" {
		return fmt.Errorf("the engine is not part of a swarm (state %q)", info.Swarm.LocalNodeState)
	}
	if !info.Swarm.ControlAvailable {
		return errors.New("the engine is a swarm worker, not a manager")
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Run carries out one operation for cfg, whose project has a swarm block:
// OpPlan, OpApply, OpApplySaved and OpDestroy (status is GetStatus;
// force-unlock goes through executor.Run: the lock is a volume on a node). It has executor.Run's contract: the outcome is returned
// with the error, the view shows the plan and asks.
func Run(ctx context.Context, cfg *config.Config, req executor.Request, view executor.View) (*executor.Outcome, error) {
	out := &executor.Outcome{Op: req.Op}
	if cfg.Project.Swarm == nil {
		return out, errors.New("the project has no swarm block")
	}
	switch req.Op {
	case executor.OpPlan, executor.OpApply, executor.OpApplySaved, executor.OpDestroy:
	default:
		return out, fmt.Errorf("%s is not supported yet for a Swarm project", req.Op)
	}
	if req.Op == executor.OpApplySaved {
		p := req.Saved
		if p == nil || p.Swarm == nil {
			return out, errors.New("apply a saved plan: the plan is not for a Swarm project")
		}
		if p.Project != cfg.Project.Name {
			return out, fmt.Errorf("the saved plan is for project %q, but %s now holds project %q", p.Project, cfg.Dir, cfg.Project.Name)
		}
		if _, err := swarmplan.Specs(p, cfg); err != nil {
			return out, err
		}
	}
	m, err := connect(ctx, cfg, req.Session)
	if err != nil {
		return out, err
	}
	defer m.Close()
	destroy := req.Op == executor.OpDestroy || req.Destroy

	if req.Op == executor.OpPlan {
		p, err := plan(ctx, cfg, m, destroy, view)
		out.Plan = p
		if err != nil {
			return out, err
		}
		return out, view.Planned(p)
	}

	// Lock and audit on the manager, as berth does on its nodes.
	sess := executor.NewSession(cfg.Project.Name, map[string]executor.Node{m.name: m.node})
	planID := ""
	if req.Saved != nil {
		planID = req.Saved.ID
	}
	lock, err := sess.Lock(ctx, lockInfo(req, planID), req.LockTimeout)
	if err != nil {
		return out, err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	// A killed run's lock was taken over: finish what it left first.
	mode := req.Recover
	if mode == "" {
		mode = planner.RecoverRollback
	}
	if err := recoverInterrupted(ctx, m, cfg.Project.Name, lock.Stale, mode, view.Event); err != nil {
		return out, err
	}

	var p *planner.Plan
	if req.Op == executor.OpApplySaved {
		p = req.Saved
		out.Plan = p
		live, err := gather(ctx, cfg, m)
		if err != nil {
			return out, err
		}
		if err := swarmplan.CheckFresh(p, live); err != nil {
			return out, err
		}
	} else {
		p, err = plan(ctx, cfg, m, destroy, view)
		out.Plan = p
		if err != nil {
			return out, err
		}
		if !p.Empty() {
			if err := lock.SetPlan(ctx, p.ID); err != nil {
				return out, fmt.Errorf("%w (nothing was changed)", err)
			}
		}
		if err := view.Planned(p); err != nil {
			return out, err
		}
	}
	if p.Empty() {
		return out, nil
	}
	if req.Op != executor.OpApplySaved && !req.AutoApprove {
		ok, err := view.Confirm(p)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, &executor.CancelledError{Op: req.Op}
		}
	}
	specs, err := swarmplan.Specs(p, cfg)
	if err != nil {
		return out, err
	}
	out.ApplyID = lock.Info.ApplyID
	out.Started = time.Now()
	view.Applying(p, out.Started)
	a := &applier{m: m, p: p, specs: specs, applyID: out.ApplyID, event: view.Event, redact: req.Redact, hook: req.Hook, started: out.Started.Add(-time.Second)}
	err = a.run(ctx)
	out.Done = a.done
	out.Result = a.result(err)
	_ = sess.WriteAudit(context.WithoutCancel(ctx), lock.Nodes(), executor.AuditRecord{
		ApplyID: out.ApplyID, PlanID: p.ID, Holder: lock.Info.Holder, Started: out.Started, Ended: time.Now(),
		Result: out.Result, Actions: len(p.Actions)})
	out.Finished = time.Now()
	out.Err = err
	out.Interrupted = err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled))
	return out, err
}

// plan gathers and plans, showing the planner's diagnostics.
func plan(ctx context.Context, cfg *config.Config, m *manager, destroy bool, view executor.View) (*planner.Plan, error) {
	live, err := gather(ctx, cfg, m)
	if err != nil {
		return nil, err
	}
	p, diags := swarmplan.Make(cfg, live, swarmplan.Options{Destroy: destroy})
	if len(diags) > 0 {
		view.Diagnostics(cfg.Files, diags)
	}
	if diags.HasErrors() {
		return nil, &executor.DiagnosticsError{Diags: diags}
	}
	return p, nil
}

// lockInfo is the run's lock: user@host, this process, now.
func lockInfo(req executor.Request, planID string) executor.LockInfo {
	host, _ := os.Hostname()
	name := ""
	env := req.Session.SSH.Environ
	if env == nil {
		env = os.Environ()
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "USER="); ok {
			name = v
		}
	}
	if u, err := user.Current(); err == nil && name == "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	return executor.LockInfo{ApplyID: executor.NewApplyID(), PlanID: planID, Holder: name + "@" + host, Host: host,
		PID: os.Getpid(), Since: time.Now()}
}
