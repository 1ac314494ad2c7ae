package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/executor/internal/msg"
	"github.com/berth-dev/berth/planner"
)

// ApplyOptions tune an apply.
type ApplyOptions struct {
	// Parallelism bounds how many nodes are worked on at once within a
	// batch. Default 10.
	Parallelism int
	// Progress receives an event at every step. It must not block long.
	Progress func(Event)
	// Hook is called at every step boundary with the boundary's name (see
	// Boundaries). Tests use it to kill berth at a chosen point.
	Hook func(point string)
	// Poll is how often a starting replica is inspected. Default 200 ms.
	Poll time.Duration
	// RemoveVolumes removes the named volumes of deleted containers after
	// the commit (destroy -volumes). Never otherwise.
	RemoveVolumes bool
	// Images does the plan's image work (build, send, pull) before any
	// container changes. Nil: every image must already be on its node.
	Images func(ctx context.Context, plan *planner.Plan) error
	// Redact removes sensitive values from text that goes into errors
	// (container logs). Nil: no redaction.
	Redact func(string) string
}

// Event is one step of an apply, for progress output (-json streams them).
type Event struct {
	Time      time.Time `json:"time"`
	Type      string    `json:"type"` // see the Ev* constants
	ApplyID   string    `json:"apply_id"`
	Step      int       `json:"step,omitempty"`
	Batch     int       `json:"batch,omitempty"`
	Kind      string    `json:"kind,omitempty"`
	Service   string    `json:"service,omitempty"`
	Replica   int       `json:"replica,omitempty"`
	Node      string    `json:"node,omitempty"`
	Container string    `json:"container,omitempty"`
	Message   string    `json:"message"`
}

// Event types.
const (
	EvPhase        = "phase"         // preflight, recovery, batch N, commit, rollback
	EvStep         = "step"          // one step of an action (stop, rename, create, start, healthy)
	EvActionDone   = "action_done"   // an action completed
	EvActionFailed = "action_failed" // an action failed
	EvUndo         = "undo"          // one action undone by rollback
)

// ReplicaError is an action that failed, with the failing container's last
// log lines.
type ReplicaError struct {
	Action *planner.Action
	Err    error
	Logs   string
}

func (e *ReplicaError) Error() string {
	a := e.Action
	s := fmt.Sprintf("service %q replica %d on node %s (container %s): %s", a.Service, a.Replica, a.Node, a.Container, e.Cause())
	if strings.TrimSpace(e.Logs) != "" {
		s += "\n  last log lines of " + a.Container + ":\n"
		for _, l := range strings.Split(strings.TrimRight(e.Logs, "\n"), "\n") {
			s += "    | " + l + "\n"
		}
		s = strings.TrimRight(s, "\n")
	}
	return s
}

func (e *ReplicaError) Unwrap() error { return e.Err }

// Cause is what failed, without the replica: the kind of action, unless
// the failed step says it already ("create container ..."), and the step's
// error. Progress lines, which name the replica, show this.
func (e *ReplicaError) Cause() string {
	cause := e.Err.Error()
	if first, _, _ := strings.Cut(cause, " "); first != string(e.Action.Kind) {
		cause = string(e.Action.Kind) + ": " + cause
	}
	return cause
}

// RollbackError says that an apply failed and what its rollback did.
type RollbackError struct {
	Cause error
	// Undone counts actions rolled back; Failed holds undo errors (the
	// next apply recovers what is left).
	Undone int
	Failed []error
}

func (e *RollbackError) Error() string {
	var b strings.Builder
	b.WriteString(e.Cause.Error())
	if len(e.Failed) == 0 {
		fmt.Fprintf(&b, "\nRolled back: %d completed action(s) undone; the cluster is as it was before this apply.", e.Undone)
	} else {
		fmt.Fprintf(&b, "\nRollback incomplete: %d action(s) undone, %d could not be:", e.Undone, len(e.Failed))
		for _, f := range e.Failed {
			b.WriteString("\n  - " + msg.OneLine(f.Error()))
		}
		b.WriteString("\nThe next berth apply recovers what is left (the old containers are kept, renamed aside).")
	}
	return b.String()
}

func (e *RollbackError) Unwrap() error { return e.Cause }

// PausedError is a failure under failure_action = "pause": nothing was
// rolled back. It is plain data: the advice on how to roll back or resume
// names the user's configuration and options, so the view builds it.
type PausedError struct {
	Cause   error
	ApplyID string
	// The replica whose failure paused the apply.
	Service   string
	Replica   int
	Node      string
	Container string
}

func (e *PausedError) Error() string {
	return e.Cause.Error() + "\nApply paused (failure_action = \"pause\"): nothing was rolled back."
}

func (e *PausedError) Unwrap() error { return e.Cause }

// Result is what an apply did.
type Result struct {
	ApplyID string
	// Done holds the actions that completed, in the order they completed
	// within each batch's plan order.
	Done       []planner.Action
	RolledBack bool
}

// Boundaries are the names passed to ApplyOptions.Hook, for kill tests
// ("recovered" only when the plan recovers an interrupted apply). The lock
// is released by the caller, after the last of them.
var Boundaries = []string{"locked", "preflight", "recovered", "stopped", "renamed", "created", "started", "healthy", "routed", "unrouted", "action", "batch", "commit-marked", "committed"}

type applier struct {
	s      *Session
	plan   *planner.Plan
	live   *planner.Live
	lock   *Lock
	opts   ApplyOptions
	id     string
	mu     sync.Mutex
	steps  []*txStep // every started action, in start order
	result *Result
	routes *router // nil when the plan has no ingress node
	// netsCreated are the networks this apply created, for the rollback.
	netsCreated []netRef

	// The stops of old containers that overlap the next batch (see
	// runBatch): tails counts them; tailErr is the first that failed, and
	// failing cancels the batches' context (cancelRun).
	tailCtx   context.Context
	tails     sync.WaitGroup
	tailErr   error
	cancelRun context.CancelCauseFunc
	// stopping are the old containers whose stop is in flight, by node:
	// a new container that publishes a host port one of them holds waits
	// for its stop.
	stopping map[string][]*stopping
}

// stopping is an old container being stopped after its batch passed its
// health gate.
type stopping struct {
	ports []planner.HostPort
	done  chan struct{}
}

// txStep is an action's progress, so that rollback undoes exactly what was
// done, even for an action interrupted halfway.
type txStep struct {
	a       *planner.Action
	node    Node // where the new container goes (or the old one is)
	oldNode Node // where the old container is

	oldRunning bool
	stopped    bool // the old container was stopped
	renamed    bool // the old container was renamed aside
	newID      string
	routed     bool              // the new container was added to the proxies
	unrouted   bool              // the old container was removed from the proxies
	prev       planner.Container // before an in-place update
	updated    bool
	// left and joined are the networks an update's repair left and joined.
	left   []string
	joined string
	done   bool
}

// Apply carries out plan with the lock held: pre-flight, recovery, then the
// plan's batches in order (nodes in parallel within a batch), each replica
// gated on its health. On any failure (or ctx cancelled) with
// failure_action = "rollback", every completed action on every node is
// undone; old containers are only removed once every action has succeeded.
// live must be the state gathered after the lock was taken.
func (s *Session) Apply(ctx context.Context, plan *planner.Plan, live *planner.Live, lock *Lock, opts ApplyOptions) (*Result, error) {
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultParallelism
	}
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	ap := &applier{s: s, plan: plan, live: live, lock: lock, opts: opts, id: lock.Info.ApplyID}
	ap.result = &Result{ApplyID: ap.id}
	ap.hook("locked")
	if err := ap.preflight(ctx); err != nil {
		return ap.result, err
	}
	ap.hook("preflight")
	if opts.Images != nil && len(plan.Images) > 0 {
		ap.phase("images")
		if err := opts.Images(ctx, plan); err != nil {
			return ap.result, fmt.Errorf("image transfer failed before any container changed: %w", err)
		}
	}
	if len(plan.Recovery) > 0 {
		ap.phase("recovery")
		if err := ap.recover(ctx); err != nil {
			return ap.result, err
		}
		ap.hook("recovered")
	}
	ap.s.ClearStaleMarkers(ctx, ap.live, ap.lock)
	ap.routes = newRouter(ap)
	defer ap.routes.close()
	// The batches run under runCtx, which a failed stop of an earlier
	// batch's old container (overlapping them) cancels; those stops run
	// under ctx itself.
	parent := ctx
	ctx, ap.cancelRun = context.WithCancelCause(parent)
	defer ap.cancelRun(nil)
	ap.tailCtx = parent
	ap.stopping = map[string][]*stopping{}
	var failed error
	var failedAction *planner.Action
	if err := ap.createNetworks(ctx); err != nil {
		failed = err
	}
	batches := groupBatches(plan.Actions)
	for bi, batch := range batches {
		if failed != nil {
			break
		}
		ap.phase(fmt.Sprintf("batch %d of %d", bi+1, len(batches)))
		// The proxies come first (their own batch); then every proxy gets
		// the table of the replicas running now.
		if !isProxyOnly(batch) {
			if err := ap.routes.start(ctx); err != nil {
				failed = fmt.Errorf("ingress: %w", err)
				break
			}
		}
		if err := ap.runBatch(ctx, batch); err != nil {
			failed = err
			var re *ReplicaError
			if errors.As(err, &re) {
				failedAction = re.Action
			}
			break
		}
		ap.hook("batch")
		if err := ctx.Err(); err != nil {
			failed = fmt.Errorf("interrupted: %w", err)
			break
		}
		if d := batchDelay(batches, bi); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				failed = fmt.Errorf("interrupted: %w", ctx.Err())
			}
			if failed != nil {
				break
			}
		}
	}
	// Every old container's stop has finished (or failed) before the
	// commit, a pause or a rollback: the transaction's record is complete.
	ap.tails.Wait()
	if ap.tailErr != nil && (failed == nil || (parent.Err() == nil && errors.Is(failed, context.Canceled))) {
		// A stop failed (and cancelled the batch that ran meanwhile): its
		// error is the cause, not the cancellation it caused.
		failed, failedAction = ap.tailErr, nil
		var re *ReplicaError
		if errors.As(failed, &re) {
			failedAction = re.Action
		}
	}
	if err := parent.Err(); err != nil && (failed == nil || (errors.Is(failed, context.Canceled) && !strings.HasPrefix(failed.Error(), "interrupted"))) {
		// Ctrl-C while only stops ran, or cutting one short.
		failed, failedAction = fmt.Errorf("interrupted: %w", err), nil
	}
	ctx = parent
	if failed != nil {
		if failedAction != nil && failedAction.Spec != nil && failedAction.Spec.Update.FailureAction == "pause" && ctx.Err() == nil {
			ap.phase("paused")
			return ap.result, &PausedError{Cause: failed, ApplyID: ap.id, Service: failedAction.Service,
				Replica: failedAction.Replica, Node: failedAction.Node, Container: failedAction.Container}
		}
		return ap.result, ap.rollback(failed)
	}
	if ap.routes != nil {
		ap.phase("ingress: final routes")
		if err := ap.routes.reset(ctx, ap.plan.Ingress.Routes); err != nil {
			return ap.result, ap.rollback(fmt.Errorf("ingress: %w", err))
		}
	}
	if err := ap.commit(context.WithoutCancel(ctx)); err != nil {
		return ap.result, err
	}
	return ap.result, nil
}

// batchDelay is the pause after batch bi: the longest update.delay of the
// services that replace or update replicas in it and go on in the next
// batch (services that share batches keep their own delay between their
// own batches; one that is done holds up nobody).
func batchDelay(batches [][]*planner.Action, bi int) time.Duration {
	if bi+1 >= len(batches) {
		return 0
	}
	next := map[string]bool{}
	for _, a := range batches[bi+1] {
		next[a.Service] = true
	}
	var d int64
	for _, a := range batches[bi] {
		if a.Spec != nil && a.Spec.Update.DelayMillis > d && (a.Kind == planner.Replace || a.Kind == planner.Update) && next[a.Service] {
			d = a.Spec.Update.DelayMillis
		}
	}
	return time.Duration(d) * time.Millisecond
}

func groupBatches(actions []planner.Action) [][]*planner.Action {
	var out [][]*planner.Action
	for i := range actions {
		a := &actions[i]
		if len(out) == 0 || out[len(out)-1][0].Batch != a.Batch {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], a)
	}
	return out
}

func (ap *applier) hook(point string) {
	if ap.opts.Hook != nil {
		ap.opts.Hook(point)
	}
}

func (ap *applier) emit(e Event) {
	if ap.opts.Progress == nil {
		return
	}
	e.Time = time.Now()
	e.ApplyID = ap.id
	ap.opts.Progress(e)
}

func (ap *applier) phase(msg string) { ap.emit(Event{Type: EvPhase, Message: msg}) }

func (ap *applier) stepEvent(a *planner.Action, msg string) {
	ap.emit(Event{Type: EvStep, Step: a.Step, Batch: a.Batch, Kind: string(a.Kind), Service: a.Service, Replica: a.Replica,
		Node: a.Node, Container: a.Container, Message: msg})
}

// preflight checks, before anything changes, that every image needed is on
// its node (or will be sent or pulled) and that the images of the containers
// a rollback would restart (the running old ones) are still there.
func (ap *applier) preflight(ctx context.Context) error {
	ap.phase("preflight")
	comingTo := map[string]bool{}
	for _, ia := range ap.plan.Images {
		for _, n := range ia.Nodes {
			comingTo[n+"\x00"+planner.NormalizeRef(ia.Image)] = true
		}
	}
	obs := planner.Observe(ap.plan.Project, ap.live)
	var errs []error
	for i := range ap.plan.Actions {
		a := &ap.plan.Actions[i]
		st := ap.live.Node(a.Node)
		if (a.Kind == planner.Create || a.Kind == planner.Replace) && st != nil {
			ref := planner.NormalizeRef(a.Spec.Image)
			if !hasImageRef(st, ref) && !comingTo[a.Node+"\x00"+ref] {
				errs = append(errs, fmt.Errorf("image %s is not on node %s (needed by service %q replica %d)", a.Spec.Image, a.Node, a.Service, a.Replica))
			}
		}
		// Only a running old container is restarted by a rollback; a stopped
		// one is just renamed back (and Docker lets rmi -f delete the image
		// of a stopped container, never of a running one).
		if a.Old != nil && (a.Kind == planner.Replace || a.Kind == planner.Delete) && a.Old.ImageID != "" {
			if ost := ap.live.Node(a.Old.Node); ost != nil && obs.Container(a.Old.Node, a.Old.ID).Running() && !hasImageID(ost, a.Old.ImageID) {
				errs = append(errs, fmt.Errorf("image %s (%s) of container %s on node %s is gone: a rollback could not restart it; pull or load it again first",
					a.Old.Image, a.Old.ImageID, a.Old.Name, a.Old.Node))
			}
		}
	}
	for _, n := range touchedNodes(ap.plan) {
		if _, err := ap.s.Node(n); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pre-flight failed, nothing was changed:\n  - %s", joinLines(errs, "\n  - "))
	}
	return nil
}

func joinLines(errs []error, sep string) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, sep)
}

func hasImageRef(st *planner.NodeState, ref string) bool {
	for _, img := range st.Images {
		for _, t := range img.Tags {
			if planner.NormalizeRef(t) == ref {
				return true
			}
		}
		if img.ID == ref {
			return true
		}
	}
	return false
}

func hasImageID(st *planner.NodeState, id string) bool {
	for _, img := range st.Images {
		if img.ID == id {
			return true
		}
	}
	return false
}

// touchedNodes are the nodes the plan changes something on, sorted.
func touchedNodes(p *planner.Plan) []string {
	set := map[string]bool{}
	for _, a := range p.Recovery {
		set[a.Node] = true
	}
	for _, a := range p.Actions {
		set[a.Node] = true
		if a.Old != nil {
			set[a.Old.Node] = true
		}
	}
	for _, na := range p.Networks {
		set[na.Node] = true
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// recover runs the plan's recovery actions: remove what an interrupted apply
// left, restore what it renamed aside.
func (ap *applier) recover(ctx context.Context) error {
	for i := range ap.plan.Recovery {
		a := &ap.plan.Recovery[i]
		n, err := ap.s.Node(a.Node)
		if err != nil {
			return fmt.Errorf("recovery: %w", err)
		}
		switch a.Kind {
		case planner.Discard:
			ap.stepEvent(a, "remove "+a.Old.Name)
			if err := n.RemoveContainer(ctx, a.Old.ID); err != nil && !isNotFound(err) {
				return fmt.Errorf("recovery: container %s on node %s: %w", a.Old.Name, a.Node, err)
			}
		case planner.Restore:
			ap.stepEvent(a, "restore "+a.Old.Name+" as "+a.Container)
			if err := n.RenameContainer(ctx, a.Old.ID, a.Container); err != nil {
				return fmt.Errorf("recovery: container %s on node %s: %w", a.Old.Name, a.Node, err)
			}
			if err := n.StartContainer(ctx, a.Old.ID); err != nil {
				return fmt.Errorf("recovery: container %s on node %s: %w", a.Container, a.Node, err)
			}
		}
	}
	return nil
}

// ClearStaleMarkers removes the commit markers that killed runs left on the
// reachable nodes of live; the caller holds lock. With the lock held no
// other apply is running, and once recovery has run (or found nothing to
// do) the markers are done with: a run killed after it had removed its old
// containers leaves nothing to recover, but its markers would otherwise
// stay forever. Apply calls it after recovery; the CLI also calls it when
// the plan is empty.
func (s *Session) ClearStaleMarkers(ctx context.Context, live *planner.Live, lock *Lock) {
	for _, nn := range s.names {
		st := live.Node(nn)
		if st == nil || !st.Reachable {
			continue
		}
		for _, v := range st.Volumes {
			if v.Labels[planner.LabelKind] != planner.KindCommit || v.Labels[planner.LabelProject] != s.project ||
				v.Labels[planner.LabelApply] == lock.Info.ApplyID {
				continue
			}
			if n, err := s.Node(nn); err == nil {
				_ = n.RemoveVolume(ctx, v.Name)
			}
		}
	}
}

func isNotFound(err error) bool {
	return err != nil && (strings.Contains(strings.ToLower(err.Error()), "no such container") || strings.Contains(err.Error(), "not found"))
}

// runBatch runs one batch: nodes in parallel (bounded), a node's actions
// concurrently. The first failure cancels the rest of the batch. It returns
// once every new replica of the batch has passed its health gate (and
// every other action is done): the stops of the old containers that
// start-first replacements leave run on meanwhile, overlapping the next
// batch (see finishLater); Apply waits for them before it commits, pauses
// or rolls back, and a failed one fails the apply like any action.
func (ap *applier) runBatch(ctx context.Context, batch []*planner.Action) error {
	byNode := map[string][]*planner.Action{}
	var names []string
	for _, a := range batch {
		if _, ok := byNode[a.Node]; !ok {
			names = append(names, a.Node)
		}
		byNode[a.Node] = append(byNode[a.Node], a)
	}
	sort.Strings(names)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var first error
	var once sync.Once
	fail := func(err error) {
		once.Do(func() { first = err; cancel() })
	}
	g := errgroup.Group{}
	g.SetLimit(ap.opts.Parallelism)
	for _, nn := range names {
		g.Go(func() error {
			var wg sync.WaitGroup
			for _, a := range byNode[nn] {
				if bctx.Err() != nil {
					break // an action failed: start no more
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := ap.runAction(bctx, a); err != nil {
						fail(err)
					}
				}()
			}
			wg.Wait()
			return nil
		})
	}
	g.Wait()
	if first != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return first
}

func (ap *applier) track(st *txStep) {
	ap.mu.Lock()
	ap.steps = append(ap.steps, st)
	ap.mu.Unlock()
}

// runAction carries out one action. A start-first replacement returns once
// its new replica is healthy (and routed): taking its old container out of
// the proxies and stopping it goes on in the background (finishLater), and
// the action is done when that is.
func (ap *applier) runAction(ctx context.Context, a *planner.Action) error {
	st := &txStep{a: a}
	ap.track(st)
	later, err := ap.doAction(ctx, st)
	if err != nil {
		ap.failed(st, err)
		return err
	}
	if later {
		ap.finishLater(st)
		return nil
	}
	ap.finished(st)
	return nil
}

// failed reports a failed action. The event names the replica: its
// message is the cause.
func (ap *applier) failed(st *txStep, err error) {
	a := st.a
	m := err.Error()
	if re := (*ReplicaError)(nil); errors.As(err, &re) {
		m = re.Cause()
	}
	ap.emit(Event{Type: EvActionFailed, Step: a.Step, Batch: a.Batch, Kind: string(a.Kind), Service: a.Service,
		Replica: a.Replica, Node: a.Node, Container: a.Container, Message: msg.OneLine(m)})
}

// finished records a completed action.
func (ap *applier) finished(st *txStep) {
	a := st.a
	st.done = true
	ap.mu.Lock()
	ap.result.Done = append(ap.result.Done, *a)
	ap.mu.Unlock()
	ap.emit(Event{Type: EvActionDone, Step: a.Step, Batch: a.Batch, Kind: string(a.Kind), Service: a.Service,
		Replica: a.Replica, Node: a.Node, Container: a.Container, Message: a.Reason})
	ap.hook("action")
}

// finishLater takes st's old container out of the proxies and stops it in
// the background, while the next batch starts. Until it is stopped, a new
// container on its node that publishes one of its host ports waits
// (waitPortsFree). The stop runs under the apply's own context: a failure
// elsewhere does not cut it short (the rollback, which waits for it,
// starts the old container again).
func (ap *applier) finishLater(st *txStep) {
	sp := &stopping{done: make(chan struct{})}
	if c, ok := ap.liveContainer(st.a.Old.Node, st.a.Old.ID); ok {
		for _, b := range c.Ports {
			sp.ports = append(sp.ports, b.Host())
		}
	}
	node := st.a.Old.Node
	ap.mu.Lock()
	ap.stopping[node] = append(ap.stopping[node], sp)
	ap.mu.Unlock()
	ap.tails.Add(1)
	go func() {
		defer ap.tails.Done()
		defer func() {
			ap.mu.Lock()
			ap.stopping[node] = slices.DeleteFunc(ap.stopping[node], func(x *stopping) bool { return x == sp })
			ap.mu.Unlock()
			close(sp.done)
		}()
		if err := ap.stopOld(ap.tailCtx, st); err != nil {
			ap.failed(st, err)
			ap.mu.Lock()
			if ap.tailErr == nil {
				ap.tailErr = err
			}
			ap.mu.Unlock()
			ap.cancelRun(err)
			return
		}
		ap.finished(st)
	}()
}

// liveContainer is the container id on node in the live state.
func (ap *applier) liveContainer(node, id string) (planner.Container, bool) {
	if st := ap.live.Node(node); st != nil {
		for _, c := range st.Containers {
			if c.ID == id {
				return c, true
			}
		}
	}
	return planner.Container{}, false
}

// waitPortsFree waits until no old container still being stopped on a's
// node holds a host port that a's new container publishes.
func (ap *applier) waitPortsFree(ctx context.Context, a *planner.Action) error {
	for {
		var wait chan struct{}
		ap.mu.Lock()
		for _, sp := range ap.stopping[a.Node] {
			if portsOverlap(sp.ports, a.Ports) {
				wait = sp.done
				break
			}
		}
		ap.mu.Unlock()
		if wait == nil {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func portsOverlap(held []planner.HostPort, want []planner.PortSpec) bool {
	for _, h := range held {
		for _, p := range want {
			if h.Overlaps(p.Host()) {
				return true
			}
		}
	}
	return false
}

// wrapErr makes err a ReplicaError of st's action, with the new
// container's last log lines when there is one.
func (ap *applier) wrapErr(ctx context.Context, st *txStep, what string, e error) error {
	if e == nil {
		return nil
	}
	if what != "" {
		e = fmt.Errorf("%s: %w", what, e)
	}
	re := &ReplicaError{Action: st.a, Err: e}
	if st.newID != "" {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		logs, _ := st.node.Logs(lctx, st.newID, 20)
		cancel()
		if ap.opts.Redact != nil {
			logs = ap.opts.Redact(logs)
		}
		re.Logs = logs
	}
	return re
}

// doAction carries out st's action up to where it may finish in the
// background: later is true when its old container is still to be taken
// out of the proxies and stopped (stopOld).
func (ap *applier) doAction(ctx context.Context, st *txStep) (later bool, err error) {
	a := st.a
	n, err := ap.s.Node(a.Node)
	if err != nil {
		return false, &ReplicaError{Action: a, Err: err}
	}
	st.node, st.oldNode = n, n
	if a.Old != nil && a.Old.Node != a.Node {
		if st.oldNode, err = ap.s.Node(a.Old.Node); err != nil {
			return false, &ReplicaError{Action: a, Err: err}
		}
	}
	wrap := func(what string, e error) error { return ap.wrapErr(ctx, st, what, e) }

	switch a.Kind {
	case planner.Update:
		prev, err := n.Inspect(ctx, a.Old.ID)
		if err != nil {
			return false, wrap("", err)
		}
		st.prev = prev
		// A repair of the networks alone changes no resources.
		if prev.NanoCPUs != a.Spec.NanoCPUs || prev.MemoryBytes != a.Spec.MemoryBytes || prev.Restart != a.Spec.Restart || a.Network == nil {
			ap.stepEvent(a, "update in place")
			if err := n.UpdateContainer(ctx, a.Old.ID, a.Spec); err != nil {
				return false, wrap("", err)
			}
			st.updated = true
		}
		if a.Network != nil {
			if err := ap.repairNetworks(ctx, st, n); err != nil {
				return false, wrap("", err)
			}
		}
		return false, nil
	case planner.Delete:
		return false, wrap("", ap.setAside(ctx, st, true))
	case planner.Create, planner.Replace:
		if a.Kind == planner.Replace {
			stopFirst := a.Order == planner.StopFirst
			if err := ap.setAside(ctx, st, stopFirst); err != nil {
				return false, wrap(oldContainer(a, "set the old container %s aside"), err)
			}
		}
		spec := *a.Spec
		spec.Labels = make(map[string]string, len(a.Spec.Labels)+2)
		for k, v := range a.Spec.Labels {
			spec.Labels[k] = v
		}
		spec.Labels[planner.LabelApply] = ap.id
		spec.Labels[planner.LabelPlan] = ap.plan.ID
		for _, v := range spec.Volumes {
			if !v.Bind {
				// Create named volumes with the project's label (the
				// engine would create them bare); an existing one is kept.
				if _, err := n.CreateVolume(ctx, v.Source, map[string]string{planner.LabelProject: ap.s.project, planner.LabelKind: "data"}); err != nil {
					return false, wrap("", err)
				}
			}
		}
		// An old container of an earlier batch may still be stopping
		// and hold a host port this one publishes.
		if err := ap.waitPortsFree(ctx, a); err != nil {
			return false, wrap("", err)
		}
		ap.stepEvent(a, "create")
		id, err := n.CreateContainer(ctx, a.Container, &spec)
		if err != nil {
			return false, wrap("", err)
		}
		st.newID = id
		ap.hook("created")
		ap.stepEvent(a, "start")
		if err := n.StartContainer(ctx, id); err != nil {
			return false, wrap("", err)
		}
		ap.hook("started")
		ap.stepEvent(a, "wait until healthy")
		if err := waitHealthy(ctx, n, id, &spec, ap.opts.Poll, true); err != nil {
			return false, wrap("health", err)
		}
		ap.hook("healthy")
		if len(a.Upstreams) > 0 && ap.routes != nil {
			ap.stepEvent(a, "add to the ingress proxies")
			st.routed = true
			if err := ap.routes.add(ctx, a.Upstreams); err != nil {
				return false, wrap("ingress", err)
			}
			ap.hook("routed")
		}
		return a.Kind == planner.Replace && st.oldRunning && !st.stopped, nil
	}
	return false, wrap("unknown action", fmt.Errorf("%q", a.Kind))
}

// stopOld takes the old container of a start-first replacement, whose new
// replica is healthy, out of the proxies and stops it.
func (ap *applier) stopOld(ctx context.Context, st *txStep) error {
	a := st.a
	if err := ap.unroute(ctx, st); err != nil {
		return ap.wrapErr(ctx, st, "ingress", err)
	}
	ap.stepEvent(a, "stop the old container")
	if err := st.oldNode.StopContainer(ctx, a.Old.ID, graceOf(a)); err != nil {
		return ap.wrapErr(ctx, st, oldContainer(a, "old container %s"), err)
	}
	st.stopped = true
	ap.hook("stopped")
	return nil
}

// oldContainer is format with the name of a's old container, and its node
// when that is not the action's.
func oldContainer(a *planner.Action, format string) string {
	s := fmt.Sprintf(format, a.Old.Name)
	if a.Old.Node != a.Node {
		s += " on node " + a.Old.Node
	}
	return s
}

func graceOf(a *planner.Action) time.Duration {
	if a.Spec != nil && a.Spec.StopGraceSeconds > 0 {
		return time.Duration(a.Spec.StopGraceSeconds) * time.Second
	}
	return 10 * time.Second
}

// unroute removes the old container of st from every proxy and waits for
// its requests in flight to finish (at most its stop grace).
func (ap *applier) unroute(ctx context.Context, st *txStep) error {
	a := st.a
	if ap.routes == nil || len(a.OldUpstreams) == 0 {
		return nil
	}
	ap.stepEvent(a, "remove "+a.Old.Name+" from the ingress proxies and drain it")
	st.unrouted = true
	if err := ap.routes.remove(ctx, a.OldUpstreams, graceOf(a)); err != nil {
		return err
	}
	ap.hook("unrouted")
	return nil
}

// setAside optionally stops the old container and renames it aside, where
// it stays until the commit (or is restored by a rollback).
func (ap *applier) setAside(ctx context.Context, st *txStep, stop bool) error {
	a := st.a
	old, err := st.oldNode.Inspect(ctx, a.Old.ID)
	if err != nil {
		return err
	}
	st.oldRunning = old.Running()
	if stop && st.oldRunning {
		if err := ap.unroute(ctx, st); err != nil {
			return fmt.Errorf("ingress: %w", err)
		}
		ap.stepEvent(a, "stop "+a.Old.Name)
		if err := st.oldNode.StopContainer(ctx, a.Old.ID, graceOf(a)); err != nil {
			return err
		}
		st.stopped = true
		ap.hook("stopped")
	}
	aside := planner.AsideName(a.Old.Name, ap.id)
	ap.stepEvent(a, "rename "+a.Old.Name+" to "+aside)
	if err := st.oldNode.RenameContainer(ctx, a.Old.ID, aside); err != nil {
		return err
	}
	st.renamed = true
	ap.hook("renamed")
	return nil
}

// rollback undoes every started action in reverse order, on a context that
// ignores the cancellation that may have caused it.
func (ap *applier) rollback(cause error) error {
	ap.phase("rollback")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	re := &RollbackError{Cause: cause}
	ap.mu.Lock()
	steps := append([]*txStep(nil), ap.steps...)
	ap.mu.Unlock()
	// Undo batch by batch, latest first; within a batch, in parallel.
	for i := len(steps) - 1; i >= 0; {
		j := i
		for j >= 0 && steps[j].a.Batch == steps[i].a.Batch {
			j--
		}
		group := steps[j+1 : i+1]
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, st := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if did, err := ap.undo(ctx, st); err != nil {
					mu.Lock()
					re.Failed = append(re.Failed, err)
					mu.Unlock()
				} else if did {
					mu.Lock()
					re.Undone++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		i = j
	}
	if ap.routes != nil {
		// The old containers run again: every proxy goes back to the
		// table of the replicas that ran before, then the new replicas
		// that served are drained and removed.
		if err := ap.routes.reset(ctx, ap.plan.Ingress.Start); err != nil {
			re.Failed = append(re.Failed, fmt.Errorf("ingress: %w", err))
		}
		re.Failed = append(re.Failed, ap.removeServedNew(ctx, steps)...)
	}
	if err := ap.removeCreatedNetworks(ctx); err != nil {
		re.Failed = append(re.Failed, err)
	}
	ap.result.RolledBack = true
	if len(re.Failed) == 0 {
		ap.removeMarkersEverywhere(ctx)
	}
	return re
}

// undo reverts one action's completed steps. did is false when the action
// had changed nothing yet.
func (ap *applier) undo(ctx context.Context, st *txStep) (did bool, err error) {
	a := st.a
	if st.newID == "" && !st.renamed && !st.stopped && !st.updated && !st.unrouted && st.joined == "" && len(st.left) == 0 {
		return false, nil
	}
	ap.emit(Event{Type: EvUndo, Step: a.Step, Batch: a.Batch, Kind: string(a.Kind), Service: a.Service, Replica: a.Replica,
		Node: a.Node, Container: a.Container, Message: "undo " + string(a.Kind)})
	var errs []error
	if st.routed {
		// It serves through the proxies: it stays until the old container
		// runs again and the start table is pushed (removeServedNew); it
		// only gives its name back. A run killed now leaves it labelled
		// with this apply, so the next apply discards it.
		if st.renamed {
			if err := st.node.RenameContainer(ctx, st.newID, undoName(a.Container, ap.id)); err != nil {
				errs = append(errs, fmt.Errorf("new container %s on node %s: %w", a.Container, a.Node, err))
			}
		}
	} else if st.newID != "" {
		if err := st.node.RemoveContainer(ctx, st.newID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("new container %s on node %s: %w", a.Container, a.Node, err))
		}
	}
	if st.joined != "" || len(st.left) > 0 {
		if err := undoNetworks(ctx, st); err != nil {
			errs = append(errs, err)
		}
	}
	if st.updated {
		prev := planner.ContainerSpec{NanoCPUs: st.prev.NanoCPUs, MemoryBytes: st.prev.MemoryBytes, Restart: st.prev.Restart}
		if err := st.node.UpdateContainer(ctx, a.Old.ID, &prev); err != nil {
			errs = append(errs, fmt.Errorf("revert the update of %s on node %s: %w", a.Container, a.Node, err))
		}
	}
	if st.renamed && len(errs) == 0 {
		if err := st.oldNode.RenameContainer(ctx, a.Old.ID, a.Old.Name); err != nil {
			errs = append(errs, fmt.Errorf("old container %s on node %s: %w", a.Old.Name, a.Old.Node, err))
		}
	}
	if st.oldRunning && (st.stopped || st.renamed) && len(errs) == 0 {
		if err := st.oldNode.StartContainer(ctx, a.Old.ID); err != nil {
			errs = append(errs, fmt.Errorf("old container %s on node %s: %w", a.Old.Name, a.Old.Node, err))
		} else if a.Spec != nil {
			// Wait (briefly) until the restored container serves again,
			// without the monitor period.
			old := *a.Spec
			old.Update.MonitorMillis = 0
			if old.Update.DeadlineMillis > 30000 {
				old.Update.DeadlineMillis = 30000
			}
			_ = waitHealthy(ctx, st.oldNode, a.Old.ID, &old, ap.opts.Poll, false)
		}
	}
	// An old container taken out of the proxies is back in the start
	// table, which the rollback pushes once every old container runs.
	return true, errors.Join(errs...)
}

// undoName is the name a new container that served through the ingress
// takes during a rollback, until it is removed: its own name goes back to
// the old container.
func undoName(name, applyID string) string { return name + "_berth_undo_" + applyID }

// removeServedNew removes, once the start table is pushed, the new
// containers of a rollback that served through the proxies, after their
// requests in flight finished (at most their stop grace).
func (ap *applier) removeServedNew(ctx context.Context, steps []*txStep) []error {
	var served []*txStep
	var addrs []string
	grace := time.Duration(0)
	for _, st := range steps {
		if st.routed && st.newID != "" {
			served = append(served, st)
			for _, u := range st.a.Upstreams {
				addrs = append(addrs, u.Address)
			}
			grace = max(grace, graceOf(st.a))
		}
	}
	if len(served) == 0 {
		return nil
	}
	ap.routes.drain(ctx, addrs, grace)
	var errs []error
	for _, st := range served {
		if err := st.node.RemoveContainer(ctx, st.newID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("new container %s on node %s: %w", st.a.Container, st.a.Node, err))
		}
	}
	return errs
}

// commit makes the apply final: a commit marker on every touched node (so a
// run killed now is finished, not rolled back, by the next apply), then the
// old containers go, then the markers.
func (ap *applier) commit(ctx context.Context) error {
	ap.phase("commit")
	nodes := touchedNodes(ap.plan)
	for _, nn := range nodes {
		n, err := ap.s.Node(nn)
		if err != nil {
			continue
		}
		if _, err := n.CreateVolume(ctx, markerName(ap.s.project, ap.id), map[string]string{
			planner.LabelKind: planner.KindCommit, planner.LabelProject: ap.s.project, planner.LabelApply: ap.id}); err != nil {
			return fmt.Errorf("commit: mark node %s: %w", nn, err)
		}
	}
	ap.hook("commit-marked")
	var errs []error
	volumes := map[string]map[string]bool{}
	for _, st := range ap.steps {
		if !st.renamed {
			continue
		}
		if ap.opts.RemoveVolumes {
			if c, err := st.oldNode.Inspect(ctx, st.a.Old.ID); err == nil {
				for _, m := range c.Mounts {
					if m.Type == "volume" && m.Name != "" {
						if volumes[st.a.Old.Node] == nil {
							volumes[st.a.Old.Node] = map[string]bool{}
						}
						volumes[st.a.Old.Node][m.Name] = true
					}
				}
			}
		}
		if err := st.oldNode.RemoveContainer(ctx, st.a.Old.ID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("commit: old container %s on node %s: %w", st.a.Old.Name, st.a.Old.Node, err))
		}
	}
	for nn, vols := range volumes {
		n, err := ap.s.Node(nn)
		if err != nil {
			continue
		}
		for v := range vols {
			if err := n.RemoveVolume(ctx, v); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("commit: node %s: %w", nn, err))
			}
		}
	}
	errs = append(errs, ap.removeNetworks(ctx)...)
	if len(errs) > 0 {
		return fmt.Errorf("every action succeeded, but the commit is incomplete (the next apply finishes it):\n  - %s", joinLines(errs, "\n  - "))
	}
	ap.hook("committed")
	ap.removeMarkersEverywhere(ctx)
	return nil
}

func markerName(project, applyID string) string { return "berth-commit-" + project + "-" + applyID }

func (ap *applier) removeMarkersEverywhere(ctx context.Context) {
	for _, nn := range touchedNodes(ap.plan) {
		if n, err := ap.s.Node(nn); err == nil {
			removeMarkers(ctx, n, ap.s.project, ap.id)
		}
	}
}

func removeMarkers(ctx context.Context, n Node, project, applyID string) {
	_ = n.RemoveVolume(ctx, markerName(project, applyID))
}
