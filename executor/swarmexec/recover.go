package swarmexec

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/planner/swarmplan"
)

// recoverInterrupted finishes what applies killed with kill -9 left: the
// runs whose stale locks this run took over (stale: their apply IDs). Every
// service such a run created or updated carries its apply ID (label
// berth.apply). Swarm carries on with an update after berth is gone, so
// recovery first waits until Swarm's update (or its own rollback) of each
// such service settled; then, with planner.RecoverRollback (the default),
// it undoes the interrupted apply as a whole, as a failed apply is undone:
// an updated service goes back to its previous spec with Swarm's rollback,
// a created one is removed. With planner.RecoverForward it keeps them (the
// plan that follows carries out the rest). It runs under the lock, before
// the run plans or checks its saved plan.
func recoverInterrupted(ctx context.Context, m *manager, project string, stale []string, mode string, event func(executor.Event)) error {
	if len(stale) == 0 {
		return nil
	}
	svcs, err := m.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmplan.LabelProject+"="+project))})
	if err != nil {
		return fmt.Errorf("recovery: list services through manager %s: %w", m.name, err)
	}
	// Latest first: the dependants were updated after what they depend on.
	slices.SortFunc(svcs, func(x, y swarm.Service) int { return y.UpdatedAt.Compare(x.UpdatedAt) })
	a := &applier{m: m, event: event, applyID: strings.Join(stale, ",")}
	var found []string
	for _, s := range svcs {
		id := s.Spec.Labels[swarmplan.LabelApply]
		if id == "" || !slices.Contains(stale, id) {
			continue
		}
		name := s.Spec.Labels[swarmplan.LabelService]
		found = append(found, name)
		act := &planner.Action{Service: name, Container: s.Spec.Name, Node: "swarm"}
		if len(found) == 1 {
			a.emit(executor.EvPhase, nil, fmt.Sprintf("recovery of the interrupted apply %s (%s)", id, mode))
		}
		if err := a.settle(ctx, act, s.ID); err != nil {
			return fmt.Errorf("recovery: service %s: %w", s.Spec.Name, err)
		}
		if mode == planner.RecoverForward {
			a.emit(executor.EvStep, act, "kept the interrupted apply's change (recover forward)")
			continue
		}
		cur, _, err := m.cli.ServiceInspectWithRaw(ctx, s.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("recovery: inspect service %s: %w", s.Spec.Name, err)
		}
		if cur.Spec.Labels[swarmplan.LabelApply] != id {
			a.emit(executor.EvUndo, act, "Swarm rolled it back to its previous spec")
			continue
		}
		if cur.PreviousSpec == nil {
			if err := m.cli.ServiceRemove(ctx, s.ID); err != nil {
				return fmt.Errorf("recovery: remove service %s: %w", s.Spec.Name, err)
			}
			if err := a.waitGone(ctx, act, &planner.SwarmService{ID: s.ID, Name: s.Spec.Name}); err != nil {
				return fmt.Errorf("recovery: %w", err)
			}
			a.emit(executor.EvUndo, act, "removed the service the interrupted apply created")
			continue
		}
		if _, err := m.cli.ServiceUpdate(ctx, s.ID, cur.Version, cur.Spec, swarm.ServiceUpdateOptions{Rollback: "previous"}); err != nil {
			return fmt.Errorf("recovery: roll back service %s: %w", s.Spec.Name, err)
		}
		if err := a.waitRollback(ctx, act, s.ID); err != nil {
			return fmt.Errorf("recovery: service %s: %w", s.Spec.Name, err)
		}
		a.emit(executor.EvUndo, act, "rolled back to its previous spec (Swarm's rollback)")
	}
	if len(found) == 0 {
		a.emit(executor.EvPhase, nil, "recovery: the interrupted apply "+strings.Join(stale, ", ")+" changed no service")
	}
	return nil
}

// settle waits until Swarm no longer updates or rolls back the service.
func (a *applier) settle(ctx context.Context, act *planner.Action, id string) error {
	deadline := time.Now().Add(convergeTimeout)
	last := ""
	for {
		svc, _, err := a.m.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		us := svc.UpdateStatus
		if us == nil || (us.State != swarm.UpdateStateUpdating && us.State != swarm.UpdateStateRollbackStarted) {
			return nil
		}
		if msg := fmt.Sprintf("waiting for Swarm: %s: %s", us.State, us.Message); msg != last {
			last = msg
			a.emit(executor.EvStep, act, msg)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Swarm's update did not settle in time (%s)", us.State)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}
