package executor

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/planner"
)

// ExecRequest is OpExec's: a command run in one replica.
type ExecRequest struct {
	Target Target
	ExecOptions
	// Started, when set, is told which replica runs the command, before
	// it runs.
	Started func(ReplicaLine)
}

// exec carries out OpExec: it finds the target's running container (the
// lowest-numbered replica when none is named) and runs the command there,
// over the node's connection. The command's exit code is the Outcome's.
func (op *operation) exec(ctx context.Context) error {
	req := op.req.Exec
	if req == nil || len(req.Cmd) == 0 {
		return fmt.Errorf("exec: no command")
	}
	live := op.sess.listProject(ctx)
	op.out.Live = live
	obs := planner.Observe(op.sess.project, live)
	if err := op.checkTargets(obs, []Target{req.Target}, live); err != nil {
		return err
	}
	var pick *planner.Replica
	var stopped []string
	for _, r := range replicasOf(obs, req.Target) {
		if r.Container.State == "running" {
			pick = &r
			break
		}
		stopped = append(stopped, fmt.Sprintf("%s.%d@%s is %s", r.Service, r.Index, r.Node, r.Container.State))
	}
	if pick == nil {
		reason := "no running replica on the reachable nodes"
		if len(stopped) > 0 {
			reason = fmt.Sprintf("no running replica (%v)", stopped)
		}
		return &TargetError{Target: req.Target, Reason: reason + unreachableNote(live)}
	}
	n, err := op.sess.Node(pick.Node)
	if err != nil {
		return err
	}
	if req.Started != nil {
		req.Started(ReplicaLine{Service: pick.Service, Replica: pick.Index, Node: pick.Node, Container: pick.Container.Name, ID: pick.Container.ID})
	}
	code, err := n.Exec(ctx, pick.Container.ID, req.ExecOptions)
	if err != nil {
		return &NodeError{Node: pick.Node, Err: fmt.Errorf("%s.%d: %w", pick.Service, pick.Index, err)}
	}
	op.out.ExitCode = code
	return nil
}
