package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/internal/trace"
	"github.com/berth-dev/berth/planner"
)

// Gather reads the live state of every node, all nodes in parallel (at most
// Options.ReadParallelism at once) and, per node, its engine facts, containers,
// images, host ports, this project's volumes and networks in parallel too.
//
// Every node appears in the result: reachable with its state, or
// unreachable with a one-line reason that names it. If any part of a node's
// gather fails the whole node is unreachable: a transport error is never
// read as "no containers".
func (s *Session) Gather(ctx context.Context) *planner.Live {
	live := &planner.Live{Nodes: map[string]*planner.NodeState{}}
	var mu sync.Mutex
	g := errgroup.Group{}
	g.SetLimit(s.opts.ReadParallelism)
	for _, name := range s.names {
		g.Go(func() error {
			st := s.gatherNode(ctx, name)
			mu.Lock()
			live.Nodes[name] = st
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return live
}

func (s *Session) gatherNode(ctx context.Context, name string) *planner.NodeState {
	st := s.gatherOne(ctx, name)
	if rn, ok := s.removed[name]; ok {
		st.Removed, st.Address = true, rn.Address
	}
	return st
}

func (s *Session) gatherOne(ctx context.Context, name string) *planner.NodeState {
	n, err := s.Node(name)
	if err != nil {
		return &planner.NodeState{Name: name, Error: err.Error()}
	}
	defer trace.Spanf("gather %s", name)()
	st, err := gatherNode(ctx, n, s.project, !s.noHostPorts)
	if err != nil {
		return &planner.NodeState{Name: name, Error: (&NodeError{Node: name, Err: err}).Error()}
	}
	return st
}

// GatherNode reads one node's state for project. On any error it returns
// no state at all.
func GatherNode(ctx context.Context, n Node, project string) (*planner.NodeState, error) {
	return gatherNode(ctx, n, project, true)
}

// gatherNode is GatherNode; without hostPorts it skips reading the node's
// listening sockets (one exec session over SSH, the slowest part of a
// gather), which only matter to services that publish ports.
func gatherNode(ctx context.Context, n Node, project string, hostPorts bool) (*planner.NodeState, error) {
	st := &planner.NodeState{Name: n.Name(), Reachable: true}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		defer trace.Spanf("gather %s: %s", n.Name(), "Info")()
		st.Engine, err = n.Info(gctx)
		return err
	})
	g.Go(func() (err error) {
		defer trace.Spanf("gather %s: %s", n.Name(), "Containers")()
		st.Containers, st.Foreign, err = n.Containers(gctx, project)
		if err != nil {
			return err
		}
		st.Foreign, err = foreignReservations(gctx, n, st.Foreign)
		return err
	})
	g.Go(func() (err error) {
		defer trace.Spanf("gather %s: %s", n.Name(), "Images")()
		st.Images, err = n.Images(gctx)
		return err
	})
	g.Go(func() (err error) {
		defer trace.Spanf("gather %s: %s", n.Name(), "Networks")()
		st.Networks, err = n.Networks(gctx, project)
		return err
	})
	if hostPorts {
		g.Go(func() (err error) {
			defer trace.Spanf("gather %s: %s", n.Name(), "HostPorts")()
			st.HostPorts, err = n.HostPorts(gctx)
			return err
		})
	}
	g.Go(func() (err error) {
		defer trace.Spanf("gather %s: %s", n.Name(), "Volumes")()
		// One list of every volume, filtered here: the engine cannot select
		// "this project's label or no berth label at all".
		vs, err := n.Volumes(gctx, nil)
		st.Volumes = projectVolumes(vs, project)
		return err
	})
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("gather: %w", ctx.Err())
		}
		return nil, err
	}
	st.Ingress = gatherIngress(ctx, n, project, st.Containers)
	return st, nil
}

// foreignReservations fills in the CPU and memory reservations of the
// running containers of other berth projects: they count against a node's
// capacity when the planner places replicas. The container list does not
// carry them, so each such container is inspected (the way this project's
// own containers are), at most 8 at a time; unlabelled containers and
// stopped ones (which reserve nothing) cost nothing. A container gone
// between list and inspect is dropped.
func foreignReservations(ctx context.Context, n Node, foreign []planner.Container) ([]planner.Container, error) {
	var idx []int
	for i, c := range foreign {
		if c.Labels[planner.LabelProject] != "" && c.Running() {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return foreign, nil
	}
	gone := make([]bool, len(foreign))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, i := range idx {
		g.Go(func() error {
			c, err := n.Inspect(gctx, foreign[i].ID)
			if errors.Is(err, ErrNotFound) {
				gone[i] = true
				return nil
			}
			if err != nil {
				return err
			}
			foreign[i].NanoCPUs, foreign[i].MemoryBytes = c.NanoCPUs, c.MemoryBytes
			if c.State != "" {
				foreign[i].State = c.State
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := foreign[:0]
	for i, c := range foreign {
		if !gone[i] {
			out = append(out, c)
		}
	}
	return out, nil
}

// projectVolumes keeps the volumes a plan of project may care about: those
// labelled with the project (its services' named volumes, created with the
// replica's labels, and berth's own lock, audit and commit volumes), and
// named volumes with no berth label (a service's volume created by an older
// berth or by hand; the planner matches them by name). Anonymous volumes
// (64 hex digits) and other projects' volumes are left out.
func projectVolumes(vs []planner.Volume, project string) []planner.Volume {
	out := make([]planner.Volume, 0, len(vs))
	for _, v := range vs {
		switch p, labelled := v.Labels[planner.LabelProject]; {
		case labelled && p == project && project != "":
			out = append(out, v)
		case !labelled && !anonymousVolume(v.Name):
			out = append(out, v)
		}
	}
	return out
}

func anonymousVolume(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, r := range name {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
