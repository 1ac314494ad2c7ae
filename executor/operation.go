package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/internal/trace"
	"github.com/berth-dev/berth/planner"
)

// Op names what an operation does: one per command that talks to the nodes.
type Op string

// The operations Run carries out. Only OpApply, OpApplySaved and
// OpDestroy lock the project and change anything.
const (
	OpPlan        Op = "plan"         // gather and plan
	OpApply       Op = "apply"        // lock, gather, plan, ask, apply
	OpApplySaved  Op = "apply-saved"  // lock, gather, refuse a stale plan, apply it without asking
	OpDestroy     Op = "destroy"      // OpApply with a plan that removes every container
	OpStatus      Op = "status"       // gather
	OpForceUnlock Op = "force-unlock" // remove a lock left by a run that is gone
	OpLogs        Op = "logs"         // read (and follow) the replicas' output
	OpExec        Op = "exec"         // run a command in a replica
)

// The results of an apply, in its Outcome and its audit record.
const (
	ResultApplied            = "applied"
	ResultPaused             = "paused"
	ResultRolledBack         = "rolled back"
	ResultRollbackIncomplete = "rollback incomplete"
	ResultFailed             = "failed"
)

// Request is one operation: what to do and how. It holds no output: what
// the operation shows goes through its View, what it did comes back as an
// Outcome.
type Request struct {
	Op Op
	// Session says how the nodes are reached (Parallelism also bounds the
	// apply, ReadParallelism the connecting and gathering); its Environ
	// also names the lock's holder (USER).
	Session Options
	// Open opens the session; nil means Open. Tests open fake nodes.
	Open func(ctx context.Context, cfg *config.Config, opts Options) *Session
	// Recover is how a plan finishes an interrupted apply it finds:
	// planner.RecoverRollback (the default) or planner.RecoverForward.
	Recover string
	// Destroy plans the removal of every container (OpPlan; OpDestroy
	// always does).
	Destroy bool
	// Saved is the plan of OpApplySaved, as read from its file; its
	// sensitive values are filled in from the configuration.
	Saved *planner.Plan
	// AutoApprove applies without asking the View.
	AutoApprove bool
	// AllowUnreachable lets OpApply, OpApplySaved and OpDestroy carry out
	// a plan made while some nodes could not be read (it covers the other
	// nodes only); without it they refuse such a plan, nothing changed.
	AllowUnreachable bool
	// RescheduleUnreachable plans the replicas that may run on an
	// unreachable node on reachable nodes (planner.Options).
	RescheduleUnreachable bool
	// LockTimeout is how long to wait for another run's lock (0: fail at
	// once).
	LockTimeout time.Duration
	// Rollback makes OpApply plan the revisions of an earlier apply
	// instead of the configuration's (berth rollback): RollbackTo names
	// it, else the successful apply before the latest one.
	Rollback   bool
	RollbackTo string
	// LockID is the lock OpForceUnlock removes.
	LockID string
	// RemoveVolumes also removes the named volumes of the removed
	// containers (destroy -volumes).
	RemoveVolumes bool
	// Logs is what OpLogs reads and where it sends it.
	Logs *LogsRequest
	// Exec is the command OpExec runs.
	Exec *ExecRequest
	// Hook is apply's boundary hook (see ApplyOptions.Hook); tests only.
	Hook func(point string)
	// Redact removes sensitive values from the text of errors.
	Redact func(string) string
	// ImageFacts reads the local engine's image facts for the planner
	// (build tags, the images it holds); withLocal is false for a destroy.
	// Nil: images.LocalFacts with the session's environment.
	ImageFacts func(ctx context.Context, cfg *config.Config, withLocal bool) (images.Facts, error)
	// NewImageStep returns apply's image step over s with opts. Nil:
	// NewImageStep (tests replace the local engine through opts.Local).
	NewImageStep func(cfg *config.Config, s *Session, opts images.Options) *images.Step
}

// ImageOutput says where apply's image step reports.
type ImageOutput struct {
	// Progress gets transfer progress lines; it is never a -json stream.
	Progress io.Writer
	// Terminal redraws the progress lines in place.
	Terminal bool
	// Event, when set, gets an event per finished image step (with the
	// apply's ID filled in).
	Event func(Event)
}

// View is what an operation shows and asks while it runs. cmd/berth
// implements it per command, for people and as JSON. It is not for the
// outcome: the caller shows that from what Run returns.
type View interface {
	// Diagnostics shows the planner's diagnostics, warnings too; files are
	// the configuration's, for source snippets.
	Diagnostics(files map[string]*hcl.File, diags hcl.Diagnostics)
	// Planned shows the plan OpPlan, OpApply and OpDestroy made, before
	// any question.
	Planned(p *planner.Plan) error
	// Confirm asks whether to carry out p, a plan with changes; false
	// cancels with nothing changed. It is not called with AutoApprove.
	Confirm(p *planner.Plan) (bool, error)
	// Applying says the apply of p begins now (images first).
	Applying(p *planner.Plan, at time.Time)
	// Event shows one step of the apply. It is called from every node's
	// goroutine at once, and must not block long.
	Event(e Event)
	// ImageOutput says where the image step reports.
	ImageOutput() ImageOutput
}

// Outcome is what an operation did, for the caller's view and exit code.
type Outcome struct {
	Op Op
	// Plan is the plan made or applied (nil for status and force-unlock).
	Plan *planner.Plan
	// Live is the state gathered (status, plan, apply; logs and exec: the
	// project's containers only).
	Live *planner.Live
	// The apply's, once it began (Result is "" when nothing was applied:
	// an empty plan, or a failure before the apply).
	ApplyID   string
	Result    string // ResultApplied, ResultPaused, ...
	Done      []planner.Action
	BytesSent map[string]int64
	Started   time.Time
	// Finished is when the apply's audit record was written, before the
	// lock is released.
	Finished time.Time
	// Interrupted says the apply failed because of Ctrl-C or SIGTERM.
	Interrupted bool
	// Err is the apply's error (also returned by Run).
	Err error
	// Unlocked are the nodes OpForceUnlock removed the lock from.
	Unlocked []string
	// ExitCode is the command's of OpExec.
	ExitCode int
}

// HostKeyMismatchError is returned when a node (or its jump host) offered
// a host key other than the recorded one: nothing was sent to any node.
type HostKeyMismatchError struct {
	Errs []error
}

func (e *HostKeyMismatchError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		lines[i] = "  - " + err.Error()
	}
	return "a node's host key does not match the one recorded in known_hosts: it may not be the node it claims to be, " +
		"so berth stops here and nothing was sent to any node:\n" + strings.Join(lines, "\n")
}

// DiagnosticsError is returned when planning failed; the diagnostics were
// already shown through the View.
type DiagnosticsError struct {
	Diags hcl.Diagnostics
}

func (e *DiagnosticsError) Error() string { return "plan: " + e.Diags.Error() }

// UnreachableError is returned by OpApply, OpApplySaved and OpDestroy
// without Request.AllowUnreachable when the plan was made while nodes
// could not be read: the plan covers the other nodes only, and nothing was
// changed.
type UnreachableError struct {
	Op    Op
	Nodes []planner.NodeSnapshot // the unreachable ones
}

func (e *UnreachableError) Error() string {
	what := "apply"
	if e.Op == OpDestroy {
		what = "destroy"
	}
	parts := make([]string, len(e.Nodes))
	for i, n := range e.Nodes {
		parts[i] = n.Name
		if n.Error != "" {
			parts[i] += " (" + n.Error + ")"
		}
	}
	verb := "is"
	if len(e.Nodes) > 1 {
		verb = "are"
	}
	return fmt.Sprintf("%s refused: node %s %s unreachable, so the plan covers the other nodes only; nothing was changed",
		what, strings.Join(parts, ", "), verb)
}

// refuseUnreachable fails when p was made without some nodes and the
// request does not allow that.
func (op *operation) refuseUnreachable(p *planner.Plan) error {
	if op.req.AllowUnreachable {
		return nil
	}
	var down []planner.NodeSnapshot
	for _, n := range p.Nodes {
		if !n.Reachable && !n.Removed {
			down = append(down, n)
		}
	}
	if len(down) == 0 {
		return nil
	}
	return &UnreachableError{Op: op.req.Op, Nodes: down}
}

// CancelledError is returned when the confirmation was not given.
type CancelledError struct {
	Op Op
}

func (e *CancelledError) Error() string {
	what := "apply"
	if e.Op == OpDestroy {
		what = "destroy"
	}
	return what + " cancelled: nothing was changed"
}

// NoLockError is returned by OpForceUnlock when no reachable node holds
// the lock. Held are the project's locks (of other IDs) found instead, by
// node.
type NoLockError struct {
	LockID string
	Held   map[string]LockInfo
}

func (e *NoLockError) Error() string {
	s := fmt.Sprintf("no lock with ID %s found on any reachable node", e.LockID)
	if len(e.Held) == 0 {
		return s + ": the project is not locked"
	}
	s += "; the project's lock is held:"
	var ids []string
	for _, nn := range slices.Sorted(maps.Keys(e.Held)) {
		s += fmt.Sprintf("\n  - on node %s by %s", nn, e.Held[nn])
		ids = append(ids, e.Held[nn].ApplyID)
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		s += "\nif that run is gone for good: berth force-unlock " + id
	}
	return s
}

// operation is one Run.
type operation struct {
	cfg  *config.Config
	req  Request
	view View
	sess *Session
	out  *Outcome
	// facts delivers the local engine's image facts once, started by
	// startFacts (nil: not started yet).
	facts chan factsResult
}

type factsResult struct {
	f   images.Facts
	err error
}

// Run carries out one operation on the nodes of cfg: it opens the session,
// refuses a node whose host key changed, locks, gathers, plans, asks
// through view, applies (images first), writes the audit record and
// releases the lock, as req.Op needs. The Outcome is returned also with an
// error, holding what was done. view may be nil for OpStatus,
// OpForceUnlock, OpLogs and OpExec, which show nothing through it (logs
// and exec send their output through their requests).
func Run(ctx context.Context, cfg *config.Config, req Request, view View) (*Outcome, error) {
	op := &operation{cfg: cfg, req: req, view: view, out: &Outcome{Op: req.Op}}
	if req.Op == OpApplySaved {
		if err := op.checkSaved(); err != nil {
			return op.out, err
		}
		if err := op.refuseUnreachable(req.Saved); err != nil {
			return op.out, err
		}
	}
	open := req.Open
	if open == nil {
		open = Open
	}
	if req.Op == OpPlan {
		// A plan takes no lock: the local engine's image facts are read
		// while the nodes are connected to, not after.
		op.startFacts(ctx)
	}
	endOpen := trace.Span("open session (all nodes)")
	op.sess = open(ctx, cfg, req.Session)
	endOpen()
	defer op.sess.Close()
	var err error
	switch req.Op {
	case OpStatus:
		op.out.Live = op.sess.Gather(ctx)
		err = ctx.Err()
	case OpForceUnlock:
		err = op.forceUnlock(ctx)
	case OpLogs, OpExec:
		if err = refuseHostKeyMismatch(op.sess); err != nil {
			break
		}
		if req.Op == OpLogs {
			err = op.logs(ctx)
		} else {
			err = op.exec(ctx)
		}
	case OpPlan, OpApply, OpApplySaved, OpDestroy:
		if err = refuseHostKeyMismatch(op.sess); err != nil {
			break
		}
		if req.Op == OpPlan {
			err = op.plan(ctx)
		} else {
			err = op.lockAndApply(ctx)
		}
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	return op.out, err
}

// checkSaved checks that the saved plan is for cfg's project and fills in
// its sensitive values.
func (op *operation) checkSaved() error {
	p := op.req.Saved
	if p == nil {
		return errors.New("apply a saved plan: no plan given")
	}
	if op.cfg.Project.Name != p.Project {
		return fmt.Errorf("the saved plan is for project %q, but %s now holds project %q", p.Project, op.cfg.Dir, op.cfg.Project.Name)
	}
	return planner.FillSecrets(p, op.cfg)
}

// refuseHostKeyMismatch fails when a node offered a host key other than the
// recorded one. Someone may be impersonating that node, so berth goes no
// further with any node: plan, apply and destroy send nothing anywhere
// (rather than carrying on without that node, as for an unreachable one).
func refuseHostKeyMismatch(sess *Session) error {
	if errs := sess.HostKeyMismatches(); len(errs) > 0 {
		return &HostKeyMismatchError{Errs: errs}
	}
	return nil
}

func (op *operation) forceUnlock(ctx context.Context) error {
	nodes, held, err := op.sess.ForceUnlock(ctx, op.req.LockID)
	op.out.Unlocked = nodes
	if len(nodes) == 0 && err == nil {
		return &NoLockError{LockID: op.req.LockID, Held: held}
	}
	return err
}

// plan gathers and plans without the lock (OpPlan).
func (op *operation) plan(ctx context.Context) error {
	opts, err := op.gather(ctx)
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	if err := op.makePlan(opts); err != nil {
		return err
	}
	defer trace.Span("show the plan")()
	return op.view.Planned(op.out.Plan)
}

// destroying says whether the operation plans the removal of everything.
func (op *operation) destroying() bool { return op.req.Op == OpDestroy || op.req.Destroy }

// startFacts starts reading the local engine's image facts, unless that
// was already started.
func (op *operation) startFacts(ctx context.Context) {
	if op.facts != nil {
		return
	}
	op.facts = make(chan factsResult, 1)
	go func() {
		facts := op.req.ImageFacts
		if facts == nil {
			facts = func(ctx context.Context, cfg *config.Config, withLocal bool) (images.Facts, error) {
				return images.LocalFacts(ctx, cfg, withLocal, op.req.Session.environ())
			}
		}
		end := trace.Span("local image facts")
		f, err := facts(ctx, op.cfg, !op.destroying())
		end()
		op.facts <- factsResult{f, err}
	}()
}

// gather reads the live state and the stale locks (killed runs) from the
// nodes, and the image facts of the local engine at the same time (or
// takes those started earlier), and returns the planner's options.
func (op *operation) gather(ctx context.Context) (planner.Options, error) {
	opts := planner.Options{Destroy: op.destroying(), Recover: op.req.Recover, RescheduleUnreachable: op.req.RescheduleUnreachable}
	op.startFacts(ctx)
	endGather := trace.Span("gather (all nodes)")
	op.out.Live = op.sess.Gather(ctx)
	endGather()
	for _, li := range Locks(op.cfg.Project.Name, op.out.Live) {
		if li.Stale() && !slices.Contains(opts.Interrupted, li.ApplyID) {
			opts.Interrupted = append(opts.Interrupted, li.ApplyID)
		}
	}
	r := <-op.facts
	op.facts = nil
	if r.err != nil {
		return opts, r.err
	}
	opts.BuildImages, opts.LocalImages, opts.LocalEngineID = r.f.BuildImages, r.f.LocalImages, r.f.LocalEngineID
	// The layers of the nodes an image may be sent to, so that the plan
	// says what travels (only nodes that lack an image cost a call).
	images.NodeLayers(ctx, op.cfg, r.f, op.out.Live, func(name string) (images.Node, error) { return op.sess.Node(name) }, op.sess.opts.ReadParallelism)
	return opts, nil
}

// makePlan plans, showing the diagnostics.
func (op *operation) makePlan(opts planner.Options) error {
	end := trace.Span("planner.Make")
	p, diags := planner.Make(op.cfg, op.out.Live, opts)
	end()
	if len(diags) > 0 {
		op.view.Diagnostics(op.cfg.Files, diags)
	}
	if diags.HasErrors() {
		return &DiagnosticsError{Diags: diags}
	}
	op.out.Plan = p
	return nil
}

// lockAndApply: lock, gather, then plan and confirm (or check the saved
// plan is fresh), apply, audit; the lock is released on return.
func (op *operation) lockAndApply(ctx context.Context) error {
	planID := ""
	if op.req.Saved != nil {
		planID = op.req.Saved.ID
	}
	lock, err := op.sess.Lock(ctx, op.lockInfo(planID), op.req.LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	if op.req.Op == OpApplySaved {
		op.out.Plan = op.req.Saved
		op.out.Live = op.sess.Gather(ctx)
		if err := planner.CheckFresh(op.out.Plan, op.out.Live); err != nil {
			return err
		}
	} else if err := op.planLocked(ctx, lock); err != nil {
		return err
	}
	p := op.out.Plan
	if err := op.refuseUnreachable(p); err != nil {
		return err
	}
	if p.Empty() {
		op.sess.ClearStaleMarkers(ctx, op.out.Live, lock)
		op.forgetRemoved(ctx, lock)
		return nil
	}
	if op.req.Op != OpApplySaved && !op.req.AutoApprove {
		ok, err := op.view.Confirm(p)
		if err != nil {
			return err
		}
		if !ok {
			return &CancelledError{Op: op.req.Op}
		}
	}
	return op.apply(ctx, lock)
}

// planLocked gathers and plans with the lock held, names the plan in the
// lock and shows it.
func (op *operation) planLocked(ctx context.Context, lock *Lock) error {
	opts, err := op.gather(ctx)
	if err != nil {
		return err
	}
	opts.Interrupted = append(opts.Interrupted, lock.Stale...)
	if op.req.Rollback {
		if opts.Rollback, err = RollbackTarget(op.cfg.Project.Name, op.out.Live, op.req.RollbackTo); err != nil {
			return fmt.Errorf("%w (nothing was changed)", err)
		}
	}
	if err := op.makePlan(opts); err != nil {
		return err
	}
	if p := op.out.Plan; !p.Empty() {
		// The lock was taken before planning: from now on it names the
		// plan, for whoever finds it held (during the prompt too).
		if err := lock.SetPlan(ctx, p.ID); err != nil {
			return fmt.Errorf("%w (nothing was changed)", err)
		}
	}
	return op.view.Planned(op.out.Plan)
}

// apply applies the plan with the lock held and writes the audit record.
func (op *operation) apply(ctx context.Context, lock *Lock) error {
	p, o := op.out.Plan, op.out
	o.ApplyID = lock.Info.ApplyID
	o.Started = time.Now()
	op.view.Applying(p, o.Started)
	opts := ApplyOptions{
		Parallelism:   op.req.Session.Parallelism,
		Progress:      op.view.Event,
		Hook:          op.req.Hook,
		RemoveVolumes: op.req.RemoveVolumes,
		Redact:        op.req.Redact,
	}
	newStep := op.req.NewImageStep
	if newStep == nil {
		newStep = NewImageStep
	}
	out := op.view.ImageOutput()
	imgOpts := images.Options{Progress: out.Progress, Terminal: out.Terminal}
	if ev := out.Event; ev != nil {
		imgOpts.Event = func(ie images.Event) { e := ImageEvent(ie); e.ApplyID = o.ApplyID; ev(e) }
	}
	step := newStep(op.cfg, op.sess, imgOpts)
	opts.Images = step.Run
	res, err := op.sess.Apply(ctx, p, o.Live, lock, opts)
	o.Result = resultOf(res, err)
	if res != nil {
		o.Done = res.Done
	}
	// Every apply leaves its record, whatever its result (also one that
	// failed before any action completed): on every node it locked, which
	// includes every reachable node the plan touches.
	// The node set keeps a removed node until an apply that succeeded
	// removed every container of the project there.
	var removedDone []planner.Action
	if o.Result == ResultApplied {
		removedDone = o.Done
	}
	rec := AuditRecord{ApplyID: o.ApplyID, PlanID: p.ID, Holder: lock.Info.Holder, Started: o.Started,
		Result: o.Result, Actions: len(p.Actions), RollbackTo: p.RollbackTo, Nodes: op.sess.NodeSet(o.Live, removedDone)}
	if err == nil {
		// What now runs, for a later rollback.
		rec.Revisions = op.sess.recordedRevisions(context.WithoutCancel(ctx), p)
	}
	rec.Ended = time.Now()
	_ = op.sess.WriteAudit(context.WithoutCancel(ctx), lock.Nodes(), rec)
	o.Finished = time.Now()
	o.BytesSent = step.BytesSent()
	o.Err = err
	o.Interrupted = err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled))
	return err
}

// forgetRemoved records the node set without the removed nodes that hold
// nothing of the project any more, when an apply has nothing else to do
// (a node drained, then its block removed): without this record the node
// would be contacted by every later run, and warned about once gone.
func (op *operation) forgetRemoved(ctx context.Context, lock *Lock) {
	set := op.sess.NodeSet(op.out.Live, nil)
	if len(op.sess.Removed()) == 0 || len(set) == len(op.sess.configured)+len(op.sess.Removed()) {
		return
	}
	now := time.Now()
	_ = op.sess.WriteAudit(context.WithoutCancel(ctx), lock.Nodes(), AuditRecord{
		ApplyID: lock.Info.ApplyID, PlanID: op.out.Plan.ID, Holder: lock.Info.Holder, Started: now, Ended: now,
		Result: ResultApplied, Nodes: set})
}

// resultOf names an apply's result for people and the audit record.
func resultOf(res *Result, err error) string {
	var pe *PausedError
	switch {
	case err == nil:
		return ResultApplied
	case errors.As(err, &pe):
		return ResultPaused
	case res != nil && res.RolledBack:
		// Some undo failed: the cluster is not as it was (the next apply
		// recovers what is left), so do not say "rolled back".
		if re := (*RollbackError)(nil); errors.As(err, &re) && len(re.Failed) > 0 {
			return ResultRollbackIncomplete
		}
		return ResultRolledBack
	}
	return ResultFailed
}

// lockInfo is this run's lock: user@host from the session's USER (else the
// process's user), this process, now.
func (op *operation) lockInfo(planID string) LockInfo {
	host, _ := os.Hostname()
	name := ""
	for _, kv := range op.req.Session.environ() {
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
	return LockInfo{ApplyID: NewApplyID(), PlanID: planID, Holder: name + "@" + host, Host: host,
		PID: os.Getpid(), Since: time.Now()}
}
