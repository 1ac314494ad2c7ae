package swarmexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/planner/swarmplan"
)

// Bounds of following a service's tasks.
const (
	// convergeTimeout bounds the wait for one service to converge, on top
	// of its monitor window per replica.
	convergeTimeout = 90 * time.Second
	// pollEvery is how often the manager is asked about a service's tasks.
	pollEvery = 300 * time.Millisecond
)

// applier carries out one Swarm plan.
type applier struct {
	m       *manager
	p       *planner.Plan
	specs   map[string]swarm.ServiceSpec
	applyID string
	event   func(executor.Event)
	redact  func(string) string
	// hook is called at apply's boundaries ("swarm-created",
	// "swarm-updated"); tests only (BERTH_TEST_KILL_AT).
	hook func(point string)
	// started is when the apply began (task failures before it are not
	// its own); the manager's clock is assumed to be close to ours.
	started time.Time

	done []planner.Action
	// changed are the services this apply created or updated, in order.
	changed []changedService
	// rolledBack is set once berth rolled back what the apply changed;
	// undoErrs holds the undos that failed.
	rolledBack bool
	undoErrs   []error
	paused     bool
}

type changedService struct {
	action *planner.Action
	id     string
	create bool
}

// StaleServiceError says a service changed since the plan was made: the
// update was refused, nothing of it was written.
type StaleServiceError struct {
	Service      string
	Planned, Now uint64
}

func (e *StaleServiceError) Error() string {
	return fmt.Sprintf("service %q changed since the plan was made (version %d planned, %d now): run berth plan again; it was not overwritten", e.Service, e.Planned, e.Now)
}

// ConvergeError says a service did not converge.
type ConvergeError struct {
	Service string
	Why     string
	// SwarmRolledBack says Swarm rolled the service back itself
	// (update failure_action rollback).
	SwarmRolledBack bool
}

func (e *ConvergeError) Error() string {
	s := fmt.Sprintf("service %q did not converge: %s", e.Service, e.Why)
	if e.SwarmRolledBack {
		s += "; Swarm rolled it back to its previous spec"
	}
	return s
}

func (a *applier) emit(typ string, act *planner.Action, msg string) {
	if a.event == nil {
		return
	}
	e := executor.Event{Time: time.Now(), Type: typ, ApplyID: a.applyID, Message: msg}
	if act != nil {
		e.Step, e.Batch, e.Kind, e.Service, e.Node, e.Container = act.Step, act.Batch, string(act.Kind), act.Service, act.Node, act.Container
	}
	a.event(e)
}

// result names the apply's result.
func (a *applier) result(err error) string {
	switch {
	case err == nil:
		return executor.ResultApplied
	case a.paused:
		return executor.ResultPaused
	case a.rolledBack && len(a.undoErrs) > 0:
		return executor.ResultRollbackIncomplete
	case a.rolledBack:
		return executor.ResultRolledBack
	}
	return executor.ResultFailed
}

func (a *applier) run(ctx context.Context) error {
	if err := a.apply(ctx); err != nil {
		if a.paused {
			return err
		}
		a.rollback(context.WithoutCancel(ctx))
		if len(a.undoErrs) > 0 {
			return fmt.Errorf("%w; rollback incomplete: %w", err, errors.Join(a.undoErrs...))
		}
		if a.rolledBack {
			return fmt.Errorf("%w; every service this apply changed was rolled back", err)
		}
		return err
	}
	return nil
}

func (a *applier) apply(ctx context.Context) error {
	sp := a.p.Swarm
	cli := a.m.cli
	if a.hasLabels(false) {
		a.emit(executor.EvPhase, nil, "node labels")
		if err := a.nodeLabels(ctx, false); err != nil {
			return err
		}
	}
	if sp.Network.Create {
		a.emit(executor.EvPhase, nil, "network "+sp.Network.Name)
		_, err := cli.NetworkCreate(ctx, sp.Network.Name, network.CreateOptions{
			Driver: "overlay", Scope: "swarm", Attachable: true,
			Labels: map[string]string{swarmplan.LabelProject: a.p.Project},
		})
		if err != nil {
			return fmt.Errorf("create network %s through manager %s: %w", sp.Network.Name, a.m.name, err)
		}
	}
	for i := range a.p.Actions {
		act := &a.p.Actions[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		a.emit(executor.EvPhase, act, fmt.Sprintf("step %d: %s service %s", act.Step, act.Kind, act.Container))
		if err := a.action(ctx, act); err != nil {
			msg := err.Error()
			if a.redact != nil {
				msg = a.redact(msg)
			}
			a.emit(executor.EvActionFailed, act, msg)
			return err
		}
		a.done = append(a.done, *act)
		a.emit(executor.EvActionDone, act, "done")
	}
	if a.hasLabels(true) {
		a.emit(executor.EvPhase, nil, "node labels no longer used")
		if err := a.nodeLabels(ctx, true); err != nil {
			return err
		}
	}
	if sp.Network.Remove {
		a.emit(executor.EvPhase, nil, "remove network "+sp.Network.Name)
		return a.removeNetwork(ctx)
	}
	return nil
}

// hasLabels reports whether the plan removes (remove) or sets (!remove)
// node labels.
func (a *applier) hasLabels(remove bool) bool {
	for _, l := range a.p.Swarm.NodeLabels {
		if (l.Kind == planner.Delete) == remove {
			return true
		}
	}
	return false
}

// removeNetwork removes the project's network once the tasks of the
// removed services left it (Swarm stops them after the service is gone).
func (a *applier) removeNetwork(ctx context.Context) error {
	deadline := time.Now().Add(convergeTimeout)
	for {
		err := a.m.cli.NetworkRemove(ctx, a.p.Swarm.Network.ID)
		if err == nil || client.IsErrNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove network %s: %w", a.p.Swarm.Network.Name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// nodeLabels applies the plan's label changes, one update per node: the
// labels it sets before the services change (remove false), the ones it
// removes after (remove true). Each label must still have the value the
// plan saw, and the update passes the version just read, so a concurrent
// change of the node is refused.
func (a *applier) nodeLabels(ctx context.Context, remove bool) error {
	byNode := map[string][]planner.SwarmNodeLabel{}
	for _, l := range a.p.Swarm.NodeLabels {
		if (l.Kind == planner.Delete) == remove {
			byNode[l.NodeID] = append(byNode[l.NodeID], l)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byNode)) {
		ls := byNode[id]
		n, _, err := a.m.cli.NodeInspectWithRaw(ctx, id)
		if err != nil {
			return fmt.Errorf("inspect swarm node %s: %w", ls[0].Node, err)
		}
		// A node's version moves on its own (status updates): what the
		// plan relied on is the label's value.
		for _, l := range ls {
			cur, ok := n.Spec.Labels[l.Label]
			if l.Kind == planner.Create && ok || l.Kind != planner.Create && cur != l.Old {
				return fmt.Errorf("swarm node %s: label %s changed since the plan was made (%q planned, %q now): run berth plan again", l.Node, l.Label, l.Old, cur)
			}
		}
		spec := n.Spec
		spec.Labels = maps.Clone(spec.Labels)
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		for _, l := range ls {
			if l.Kind == planner.Delete {
				delete(spec.Labels, l.Label)
				a.emit(executor.EvStep, nil, fmt.Sprintf("node %s: remove label %s", l.Node, l.Label))
			} else {
				spec.Labels[l.Label] = l.Value
				a.emit(executor.EvStep, nil, fmt.Sprintf("node %s: set label %s=%s", l.Node, l.Label, l.Value))
			}
		}
		if err := a.m.cli.NodeUpdate(ctx, id, n.Version, spec); err != nil {
			return fmt.Errorf("set labels on swarm node %s: %w", ls[0].Node, err)
		}
	}
	return nil
}

func (a *applier) swarmService(name string) *planner.SwarmService {
	for i := range a.p.Swarm.Services {
		if a.p.Swarm.Services[i].Service == name {
			return &a.p.Swarm.Services[i]
		}
	}
	return nil
}

func (a *applier) action(ctx context.Context, act *planner.Action) error {
	cli := a.m.cli
	ss := a.swarmService(act.Service)
	if ss == nil {
		return fmt.Errorf("service %q: not in the plan's swarm services", act.Service)
	}
	switch act.Kind {
	case planner.Create:
		spec := a.withApplyID(a.specs[act.Service])
		resp, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
		if err != nil {
			return fmt.Errorf("create service %s: %w", ss.Name, err)
		}
		a.changed = append(a.changed, changedService{action: act, id: resp.ID, create: true})
		a.boundary("swarm-created")
		return a.follow(ctx, act, ss, resp.ID, nil, spec)
	case planner.Update:
		live, _, err := cli.ServiceInspectWithRaw(ctx, ss.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect service %s: %w", ss.Name, err)
		}
		if live.Version.Index != ss.Version {
			return &StaleServiceError{Service: act.Service, Planned: ss.Version, Now: live.Version.Index}
		}
		spec := a.withApplyID(a.specs[act.Service])
		spec.TaskTemplate.ForceUpdate = live.Spec.TaskTemplate.ForceUpdate
		if act.Drift {
			spec.TaskTemplate.ForceUpdate++
		}
		_, err = cli.ServiceUpdate(ctx, ss.ID, swarm.Version{Index: ss.Version}, spec, swarm.ServiceUpdateOptions{})
		if err != nil {
			if strings.Contains(err.Error(), "out of sequence") {
				return &StaleServiceError{Service: act.Service, Planned: ss.Version}
			}
			return fmt.Errorf("update service %s: %w", ss.Name, err)
		}
		a.changed = append(a.changed, changedService{action: act, id: ss.ID})
		a.boundary("swarm-updated")
		var before *swarm.UpdateStatus
		if !sameJSON(live.Spec.TaskTemplate, spec.TaskTemplate) {
			before = live.UpdateStatus
			if before == nil {
				before = &swarm.UpdateStatus{}
			}
		}
		return a.follow(ctx, act, ss, ss.ID, before, spec)
	case planner.Delete:
		if err := cli.ServiceRemove(ctx, ss.ID); err != nil {
			return fmt.Errorf("remove service %s: %w", ss.Name, err)
		}
		return a.waitGone(ctx, act, ss)
	}
	return fmt.Errorf("service %q: unknown action %q", act.Service, act.Kind)
}

// waitGone waits until Swarm removed every task of a removed service (their
// containers stopped), so that what follows (the network's removal, a
// dependency's) finds them gone.
func (a *applier) waitGone(ctx context.Context, act *planner.Action, ss *planner.SwarmService) error {
	deadline := time.Now().Add(convergeTimeout)
	last := -1
	for {
		// A filter on a removed service is an error: list them all.
		all, err := a.m.cli.TaskList(ctx, swarm.TaskListOptions{})
		if err != nil {
			return fmt.Errorf("list tasks: %w", err)
		}
		n := 0
		for _, t := range all {
			if t.ServiceID == ss.ID {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		if n != last {
			last = n
			a.emit(executor.EvStep, act, fmt.Sprintf("%d task(s) still stopping", last))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s: %d task(s) still there after its removal", ss.Name, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// withApplyID returns spec labelled with the apply's ID: the record by
// which the next apply finds what a killed run changed (see recover).
func (a *applier) withApplyID(spec swarm.ServiceSpec) swarm.ServiceSpec {
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[swarmplan.LabelApply] = a.applyID
	return spec
}

func (a *applier) boundary(point string) {
	if a.hook != nil {
		a.hook(point)
	}
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// follow waits until the service converged: every replica's task runs the
// planned image (and, with a health check, is healthy: Swarm reports a
// task running only then) and keeps running for the monitor window. When
// the task template changed (before is the update status seen before the
// update), Swarm's rolling update must have completed, too; if Swarm rolls
// it back (failure_action rollback) or pauses it, follow fails saying so.
func (a *applier) follow(ctx context.Context, act *planner.Action, ss *planner.SwarmService, id string, before *swarm.UpdateStatus, spec swarm.ServiceSpec) error {
	cli := a.m.cli
	monitor := time.Duration(ss.MonitorNanos)
	deadline := time.Now().Add(convergeTimeout + time.Duration(ss.Replicas)*monitor)
	image := spec.TaskTemplate.ContainerSpec.Image
	var stableSet string
	var stableSince time.Time
	last, lastFailure := "", ""
	say := func(msg string) {
		if msg != last {
			last = msg
			a.emit(executor.EvStep, act, msg)
		}
	}
	for {
		svc, _, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect service %s: %w", ss.Name, err)
		}
		updated := before == nil
		if us := svc.UpdateStatus; before != nil && us != nil && !sameJSON(us, before) {
			switch us.State {
			case swarm.UpdateStateCompleted:
				updated = true
			case swarm.UpdateStatePaused:
				a.paused = true
				return &ConvergeError{Service: act.Service, Why: "Swarm paused the update (failure_action pause): " + us.Message + failure(lastFailure)}
			case swarm.UpdateStateRollbackCompleted:
				return &ConvergeError{Service: act.Service, Why: "the update failed" + failure(lastFailure), SwarmRolledBack: true}
			case swarm.UpdateStateRollbackPaused:
				return &ConvergeError{Service: act.Service, Why: "Swarm's rollback paused: " + us.Message}
			default:
				say(fmt.Sprintf("%s: %s", us.State, us.Message))
			}
		}
		tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id))})
		if err != nil {
			return fmt.Errorf("list tasks of %s: %w", ss.Name, err)
		}
		running, other, failed, why := count(tasks, image, a.started)
		if why != "" {
			lastFailure = why
		}
		if updated {
			msg := fmt.Sprintf("%d/%d tasks running", running, ss.Replicas)
			if why != "" {
				msg += " (" + why + ")"
			}
			say(msg)
			if running == ss.Replicas && other == 0 {
				set := runningSet(tasks)
				if set != stableSet {
					stableSet, stableSince = set, time.Now()
				}
				if time.Since(stableSince) >= monitor {
					say(fmt.Sprintf("converged: %d/%d tasks running for %s", running, ss.Replicas, monitor))
					return nil
				}
			} else {
				stableSet = ""
			}
			if before == nil && failed > 2*max(ss.Replicas, 1) {
				return &ConvergeError{Service: act.Service, Why: fmt.Sprintf("%d tasks failed: %s", failed, why)}
			}
		}
		if time.Now().After(deadline) {
			return &ConvergeError{Service: act.Service, Why: "not converged in time: " + last}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

func failure(why string) string {
	if why == "" {
		return ""
	}
	return " (" + why + ")"
}

// count sorts the service's tasks: desired running and running image;
// desired running but not (yet) so; failed ones since the apply started;
// and the latest failure.
func count(tasks []swarm.Task, image string, since time.Time) (running, other, failed int, why string) {
	var latest time.Time
	for _, t := range tasks {
		switch {
		case t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning && t.Spec.ContainerSpec != nil && t.Spec.ContainerSpec.Image == image:
			running++
		case t.DesiredState == swarm.TaskStateRunning:
			other++
		}
		if (t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateRejected) && !t.Status.Timestamp.Before(since) {
			failed++
			if t.Status.Timestamp.After(latest) {
				latest = t.Status.Timestamp
				why = fmt.Sprintf("task %d %s: %s", t.Slot, t.Status.State, t.Status.Err)
				if t.Status.Err == "" {
					why = fmt.Sprintf("task %d %s: %s", t.Slot, t.Status.State, t.Status.Message)
				}
			}
		}
	}
	return
}

func runningSet(tasks []swarm.Task) string {
	var ids []string
	for _, t := range tasks {
		if t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning {
			ids = append(ids, t.ID)
		}
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// rollback undoes every service the apply changed, latest first: an
// updated service goes back to its previous spec with Swarm's own rollback
// (unless Swarm rolled it back already), a created one is removed. A
// deleted service cannot come back (the plan ordered deletes last).
func (a *applier) rollback(ctx context.Context) {
	if len(a.changed) == 0 {
		return
	}
	a.emit(executor.EvPhase, nil, "rollback")
	cli := a.m.cli
	for i := len(a.changed) - 1; i >= 0; i-- {
		c := a.changed[i]
		if c.create {
			if err := cli.ServiceRemove(ctx, c.id); err != nil {
				a.undoErrs = append(a.undoErrs, fmt.Errorf("remove service %s: %w", c.action.Container, err))
				continue
			}
			a.emit(executor.EvUndo, c.action, "removed the service this apply created")
			continue
		}
		svc, _, err := cli.ServiceInspectWithRaw(ctx, c.id, swarm.ServiceInspectOptions{})
		if err != nil {
			a.undoErrs = append(a.undoErrs, fmt.Errorf("inspect service %s: %w", c.action.Container, err))
			continue
		}
		if us := svc.UpdateStatus; us != nil && (us.State == swarm.UpdateStateRollbackCompleted || us.State == swarm.UpdateStateRollbackStarted) {
			if err := a.waitRollback(ctx, c.action, c.id); err != nil {
				a.undoErrs = append(a.undoErrs, fmt.Errorf("service %s: %w", c.action.Container, err))
				continue
			}
			a.emit(executor.EvUndo, c.action, "Swarm rolled it back to its previous spec")
			continue
		}
		if svc.PreviousSpec == nil {
			a.undoErrs = append(a.undoErrs, fmt.Errorf("service %s: Swarm holds no previous spec to roll back to", c.action.Container))
			continue
		}
		if _, err := cli.ServiceUpdate(ctx, c.id, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{Rollback: "previous"}); err != nil {
			a.undoErrs = append(a.undoErrs, fmt.Errorf("roll back service %s: %w", c.action.Container, err))
			continue
		}
		if err := a.waitRollback(ctx, c.action, c.id); err != nil {
			a.undoErrs = append(a.undoErrs, fmt.Errorf("service %s: %w", c.action.Container, err))
			continue
		}
		a.emit(executor.EvUndo, c.action, "rolled back to its previous spec (Swarm's rollback)")
	}
	a.rolledBack = true
}

// waitRollback waits until Swarm finished rolling the service back.
func (a *applier) waitRollback(ctx context.Context, act *planner.Action, id string) error {
	deadline := time.Now().Add(convergeTimeout)
	last := ""
	for {
		svc, _, err := a.m.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if us := svc.UpdateStatus; us != nil {
			if msg := fmt.Sprintf("%s: %s", us.State, us.Message); msg != last {
				last = msg
				a.emit(executor.EvStep, act, msg)
			}
			switch us.State {
			case swarm.UpdateStateRollbackCompleted:
				return nil
			case swarm.UpdateStateRollbackPaused:
				return fmt.Errorf("Swarm's rollback paused: %s", us.Message)
			}
		}
		if time.Now().After(deadline) {
			return errors.New("Swarm's rollback did not complete in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}
