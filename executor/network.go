package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth/planner"
)

// The project network in an apply: the plan's networks are created before
// any container changes (and removed again by a rollback, when empty),
// removed at the commit once the old containers are gone, and a replica's
// networks are repaired in place by an update.

// netRef is a network an apply created.
type netRef struct{ node, name string }

// createNetworks creates the plan's networks, node by node in plan order.
// Those created are recorded for the rollback.
func (ap *applier) createNetworks(ctx context.Context) error {
	for _, na := range ap.plan.Networks {
		if na.Kind != planner.Create {
			continue
		}
		n, err := ap.s.Node(na.Node)
		if err != nil {
			return fmt.Errorf("network %s on node %s: %w", na.Name, na.Node, err)
		}
		ap.phase(fmt.Sprintf("create network %s on %s", na.Name, na.Node))
		if _, err := n.CreateNetwork(ctx, na.Name, planner.NetworkLabels(ap.s.project)); err != nil {
			return fmt.Errorf("node %s: %w", na.Node, err)
		}
		ap.mu.Lock()
		ap.netsCreated = append(ap.netsCreated, netRef{na.Node, na.Name})
		ap.mu.Unlock()
	}
	return nil
}

// removeCreatedNetworks undoes createNetworks (the rollback, after every
// container step is undone). A network something was attached to since is
// left: a leftover empty network is harmless and the next plan removes it
// if no replica needs it.
func (ap *applier) removeCreatedNetworks(ctx context.Context) error {
	var errs []error
	for i := len(ap.netsCreated) - 1; i >= 0; i-- {
		r := ap.netsCreated[i]
		n, err := ap.s.Node(r.node)
		if err == nil {
			err = n.RemoveNetwork(ctx, r.name)
		}
		if err != nil && !isNotFound(err) && !strings.Contains(err.Error(), "active endpoints") {
			errs = append(errs, fmt.Errorf("network %s on node %s: %w", r.name, r.node, err))
		}
	}
	return errors.Join(errs...)
}

// removeNetworks removes the networks the plan deletes (the commit, once
// the old containers are gone).
func (ap *applier) removeNetworks(ctx context.Context) []error {
	var errs []error
	for _, na := range ap.plan.Networks {
		if na.Kind != planner.Delete {
			continue
		}
		n, err := ap.s.Node(na.Node)
		if err == nil {
			ap.phase(fmt.Sprintf("remove network %s on %s", na.Name, na.Node))
			err = n.RemoveNetwork(ctx, na.Name)
		}
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("commit: network %s on node %s: %w", na.Name, na.Node, err))
		}
	}
	return errs
}

// repairNetworks carries out an update's network repair: leave a network
// it joins again (to set its aliases), join, then leave the others, so
// the container is never on no network. What was done is recorded in st
// for the undo.
func (ap *applier) repairNetworks(ctx context.Context, st *txStep, n Node) error {
	a, r := st.a, st.a.Network
	leave := func(name string) error {
		ap.stepEvent(a, "disconnect from network "+name)
		if err := n.DisconnectNetwork(ctx, name, a.Old.ID); err != nil {
			return err
		}
		st.left = append(st.left, name)
		return nil
	}
	if r.Connect != "" && slices.Contains(r.Disconnect, r.Connect) {
		if err := leave(r.Connect); err != nil {
			return err
		}
	}
	if r.Connect != "" {
		ap.stepEvent(a, "connect to network "+r.Connect)
		if err := n.ConnectNetwork(ctx, r.Connect, a.Old.ID, r.Aliases); err != nil {
			return err
		}
		st.joined = r.Connect
	}
	for _, name := range r.Disconnect {
		if name == r.Connect {
			continue
		}
		if err := leave(name); err != nil {
			return err
		}
	}
	return nil
}

// undoNetworks reverts repairNetworks: leave the network joined, join the
// networks left again with the aliases they had.
func undoNetworks(ctx context.Context, st *txStep) error {
	a := st.a
	var errs []error
	if st.joined != "" {
		if err := st.node.DisconnectNetwork(ctx, st.joined, a.Old.ID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("revert the network repair of %s on node %s: %w", a.Container, a.Node, err))
		}
	}
	for i := len(st.left) - 1; i >= 0; i-- {
		var aliases []string
		for _, p := range st.prev.Networks {
			if p.Name == st.left[i] {
				aliases = p.Aliases
			}
		}
		if err := st.node.ConnectNetwork(ctx, st.left[i], a.Old.ID, aliases); err != nil {
			errs = append(errs, fmt.Errorf("revert the network repair of %s on node %s: %w", a.Container, a.Node, err))
		}
	}
	return errors.Join(errs...)
}
