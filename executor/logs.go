package executor

import (
	"container/heap"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/planner"
)

// Target names replicas of a service: Replica 0 means all of them (logs)
// or the lowest-numbered running one (exec).
type Target struct {
	Service string
	Replica int
}

func (t Target) String() string {
	if t.Replica == 0 {
		return t.Service
	}
	return fmt.Sprintf("%s.%d", t.Service, t.Replica)
}

// LogsRequest is what OpLogs reads and where it sends it.
type LogsRequest struct {
	// Targets are the replicas whose logs are read (at least one).
	Targets []Target
	// Follow, Since and Tail are per container, as the engine takes them.
	LogOptions
	// Poll is how often a follow lists the project's containers to pick
	// up a replica's new container (default 2 s).
	Poll time.Duration
	// Window is how long a followed line is held to be merged in time
	// order with the lines of other replicas (default 200 ms).
	Window time.Duration
	// Line gets every line, merged in time order, from one goroutine.
	Line func(ReplicaLine)
	// Notice, when set, gets berth's own messages during a follow (a
	// replica's new container, a node that stopped answering).
	Notice func(string)
}

// ReplicaLine is one line of a replica's output.
type ReplicaLine struct {
	Service   string
	Replica   int
	Node      string
	Container string // its name
	ID        string
	LogLine
}

// Prefix is the replica and its node: web.2@node1.
func (l ReplicaLine) Prefix() string { return fmt.Sprintf("%s.%d@%s", l.Service, l.Replica, l.Node) }

// TargetError is a target that names no service or no replica.
type TargetError struct {
	Target Target
	Reason string
}

func (e *TargetError) Error() string { return e.Target.String() + ": " + e.Reason }

// listProject lists the project's containers on every connected node
// (unreachable ones keep their error): a Live of containers only.
func (s *Session) listProject(ctx context.Context) *planner.Live {
	live := &planner.Live{Nodes: map[string]*planner.NodeState{}}
	var mu sync.Mutex
	g := errgroup.Group{}
	g.SetLimit(s.opts.ReadParallelism)
	for _, name := range s.names {
		g.Go(func() error {
			st := &planner.NodeState{Name: name}
			if n, err := s.Node(name); err != nil {
				st.Error = err.Error()
			} else if own, _, err := n.Containers(ctx, s.project); err != nil {
				st.Error = (&NodeError{Node: name, Err: err}).Error()
			} else {
				st.Reachable, st.Containers = true, own
			}
			mu.Lock()
			live.Nodes[name] = st
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return live
}

// replicasOf returns the containers of target on the reachable nodes of
// live (not those renamed aside), sorted by index, node and name.
func replicasOf(obs *planner.Observed, t Target) []planner.Replica {
	var out []planner.Replica
	for _, r := range obs.Replicas(t.Service) {
		if t.Replica == 0 || r.Index == t.Replica {
			out = append(out, r)
		}
	}
	return out
}

// checkTargets fails for a target whose service is neither configured nor
// found, or whose replica is not found (on the reachable nodes).
func (op *operation) checkTargets(obs *planner.Observed, targets []Target, live *planner.Live) error {
	follow := op.req.Logs != nil && op.req.Logs.Follow
	if len(targets) == 0 {
		return fmt.Errorf("no service named")
	}
	var configured []string
	for _, svc := range op.cfg.Services {
		configured = append(configured, svc.Name)
	}
	for _, t := range targets {
		found := len(obs.Replicas(t.Service)) > 0
		if !found && !slices.Contains(configured, t.Service) {
			return &TargetError{Target: t, Reason: fmt.Sprintf("no such service in the configuration or on the nodes (services: %s)", strings.Join(configured, ", "))}
		}
		if t.Replica > 0 && len(replicasOf(obs, t)) == 0 && !follow {
			var have []string
			for _, r := range obs.Replicas(t.Service) {
				have = append(have, fmt.Sprintf("%s.%d@%s", t.Service, r.Index, r.Node))
			}
			reason := "no such replica on the reachable nodes"
			if len(have) > 0 {
				reason += " (found: " + strings.Join(slices.Compact(have), ", ") + ")"
			}
			return &TargetError{Target: t, Reason: reason + unreachableNote(live)}
		}
	}
	return nil
}

// unreachableNote names the unreachable nodes of live, for an error.
func unreachableNote(live *planner.Live) string {
	var down []string
	for _, name := range slices.Sorted(maps.Keys(live.Nodes)) {
		if st := live.Nodes[name]; !st.Reachable {
			down = append(down, name)
		}
	}
	if len(down) == 0 {
		return ""
	}
	return "; unreachable: " + strings.Join(down, ", ")
}

// logStream is one container's stream of a logs operation.
type logStream struct {
	r      planner.Replica
	order  int       // the replica's place among all, for ties
	last   time.Time // the last line's time
	atLast int       // how many lines had that time
	active bool
}

func (ls *logStream) line(l LogLine) ReplicaLine {
	c := ls.r.Container
	return ReplicaLine{Service: ls.r.Service, Replica: ls.r.Index, Node: ls.r.Node, Container: c.Name, ID: c.ID, LogLine: l}
}

// seen records that l was sent.
func (ls *logStream) seen(l LogLine) {
	if l.Time.Equal(ls.last) {
		ls.atLast++
	} else if l.Time.After(ls.last) {
		ls.last, ls.atLast = l.Time, 1
	}
}

// logs carries out OpLogs: the lines of every target's containers, merged
// in time order; following, then the new lines as they come, and the
// lines of containers that appear for the targets (a replica replaced by
// an apply) until ctx ends.
func (op *operation) logs(ctx context.Context) error {
	req := op.req.Logs
	if req == nil || req.Line == nil {
		return fmt.Errorf("logs: no request")
	}
	live := op.sess.listProject(ctx)
	op.out.Live = live
	obs := planner.Observe(op.sess.project, live)
	if err := op.checkTargets(obs, req.Targets, live); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(live.Nodes)) {
		if st := live.Nodes[name]; !st.Reachable {
			op.notice(st.Error + " (the lines of its replicas are not shown)")
		}
	}
	streams := map[string]*logStream{} // by node/ID
	var order []*logStream
	add := func(r planner.Replica) *logStream {
		key := r.Node + "/" + r.Container.ID
		if ls := streams[key]; ls != nil {
			return nil
		}
		ls := &logStream{r: r}
		streams[key] = ls
		order = append(order, ls)
		return ls
	}
	for _, t := range req.Targets {
		for _, r := range replicasOf(obs, t) {
			add(r)
		}
	}
	sortStreams(order)

	// The backlog: every stream read to its end, then merged.
	type got struct {
		ls    *logStream
		lines []LogLine
		err   error
	}
	results := make([]got, len(order))
	g := errgroup.Group{}
	g.SetLimit(max(op.sess.opts.Parallelism, 4))
	for i, ls := range order {
		g.Go(func() error {
			n, err := op.sess.Node(ls.r.Node)
			if err == nil {
				o := req.LogOptions
				o.Follow = false
				err = n.LogStream(ctx, ls.r.Container.ID, o, func(l LogLine) { results[i].lines = append(results[i].lines, l) })
			}
			results[i].ls, results[i].err = ls, err
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return nil
	}
	var all []ReplicaLine
	var errs []string
	for _, res := range results {
		if res.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", res.ls.line(LogLine{}).Prefix(), op.redact(res.err.Error())))
			continue
		}
		for _, l := range res.lines {
			res.ls.seen(l)
			all = append(all, res.ls.line(l))
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	for _, l := range all {
		req.Line(l)
	}
	if !req.Follow {
		if len(errs) > 0 {
			return fmt.Errorf("could not read the logs of %s", strings.Join(errs, "; "))
		}
		return nil
	}
	for _, e := range errs {
		op.notice("could not read the logs of " + e)
	}
	return op.follow(ctx, streams, order)
}

func (op *operation) notice(s string) {
	if n := op.req.Logs.Notice; n != nil {
		n(op.redact(s))
	}
}

func (op *operation) redact(s string) string {
	if op.req.Redact != nil {
		return op.req.Redact(s)
	}
	return s
}

func sortStreams(order []*logStream) {
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i].r, order[j].r
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Container.Name < b.Container.Name
	})
	for i, ls := range order {
		ls.order = i
	}
}

// follow streams new lines until ctx ends, holding each for the window to
// merge them in time order, and every poll looks for the targets' new
// containers and for streams that ended while their container runs on.
func (op *operation) follow(ctx context.Context, streams map[string]*logStream, order []*logStream) error {
	req := op.req.Logs
	poll, window := req.Poll, req.Window
	if poll <= 0 {
		poll = 2 * time.Second
	}
	if window <= 0 {
		window = 200 * time.Millisecond
	}
	type arrival struct {
		l  ReplicaLine
		ls *logStream
	}
	lines := make(chan arrival, 256)
	ended := make(chan *logStream, 16)
	var wg sync.WaitGroup
	start := func(ls *logStream, fresh bool) {
		ls.active = true
		o := LogOptions{Follow: true, Since: req.Since}
		skip := 0
		if !fresh && !ls.last.IsZero() {
			o.Since, skip = ls.last, ls.atLast
		} else if !fresh {
			o.Tail = req.Tail // nothing read yet: as the backlog would have
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := op.sess.Node(ls.r.Node)
			if err == nil {
				err = n.LogStream(ctx, ls.r.Container.ID, o, func(l LogLine) {
					if skip > 0 && l.Time.Equal(o.Since) {
						skip-- // sent already, before this stream began
						return
					}
					select {
					case lines <- arrival{ls.line(l), ls}:
					case <-ctx.Done():
					}
				})
			}
			if err != nil && ctx.Err() == nil {
				op.notice(fmt.Sprintf("%s: logs of container %s: %v", ls.line(LogLine{}).Prefix(), ls.r.Container.Name, err))
			}
			select {
			case ended <- ls:
			case <-ctx.Done():
			}
		}()
	}
	for _, ls := range order {
		start(ls, false)
	}

	var pending lineHeap
	seq := 0
	flush := func(all bool) {
		cut := time.Now().Add(-window)
		for pending.Len() > 0 && (all || !pending[0].at.After(cut)) {
			p := heap.Pop(&pending).(pendingLine)
			req.Line(p.l)
		}
	}
	tick := time.NewTicker(window / 4)
	defer tick.Stop()
	pollT := time.NewTicker(poll)
	defer pollT.Stop()
	downNodes := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			// Lines already received are shown; the streams end with ctx.
		drain:
			for {
				select {
				case a := <-lines:
					heap.Push(&pending, pendingLine{l: a.l, at: time.Now(), order: a.ls.order, seq: seq})
					seq++
				default:
					break drain
				}
			}
			flush(true)
			wg.Wait()
			return nil
		case a := <-lines:
			a.ls.seen(a.l.LogLine)
			heap.Push(&pending, pendingLine{l: a.l, at: time.Now(), order: a.ls.order, seq: seq})
			seq++
		case ls := <-ended:
			ls.active = false
			if ctx.Err() == nil {
				op.notice(fmt.Sprintf("%s: container %s (%s) stopped", ls.line(LogLine{}).Prefix(), ls.r.Container.Name, planner.ShortID(ls.r.Container.ID)))
			}
		case <-tick.C:
			flush(false)
		case <-pollT.C:
			live := op.sess.listProject(ctx)
			if ctx.Err() != nil {
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(live.Nodes)) {
				st := live.Nodes[name]
				if !st.Reachable && !downNodes[name] {
					op.notice(st.Error + " (its replicas' new lines are not shown until it answers again)")
				} else if st.Reachable && downNodes[name] {
					op.notice(name + ": answers again")
				}
				downNodes[name] = !st.Reachable
			}
			obs := planner.Observe(op.sess.project, live)
			var fresh []*logStream
			for _, t := range req.Targets {
				for _, r := range replicasOf(obs, t) {
					key := r.Node + "/" + r.Container.ID
					if ls := streams[key]; ls != nil {
						if !ls.active && r.Container.State == "running" {
							start(ls, false) // restarted in place
						}
						continue
					}
					ls := &logStream{r: r}
					streams[key] = ls
					order = append(order, ls)
					fresh = append(fresh, ls)
				}
			}
			if len(fresh) > 0 {
				sortStreams(order)
				for _, ls := range fresh {
					op.notice(fmt.Sprintf("%s: following new container %s (%s)", ls.line(LogLine{}).Prefix(), ls.r.Container.Name, planner.ShortID(ls.r.Container.ID)))
					start(ls, true)
				}
			}
		}
	}
}

// pendingLine is a followed line held for the merge window.
type pendingLine struct {
	l     ReplicaLine
	at    time.Time // when it arrived
	order int
	seq   int
}

// lineHeap orders held lines by time, then replica, then arrival.
type lineHeap []pendingLine

func (h lineHeap) Len() int { return len(h) }
func (h lineHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if !a.l.Time.Equal(b.l.Time) {
		return a.l.Time.Before(b.l.Time)
	}
	if a.order != b.order {
		return a.order < b.order
	}
	return a.seq < b.seq
}
func (h lineHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *lineHeap) Push(x any)   { *h = append(*h, x.(pendingLine)) }
func (h *lineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
