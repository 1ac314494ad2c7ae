package executor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/planner"
)

// LabelHost is planner.LabelHost, kept under its old name.
const LabelHost = planner.LabelHost

// LockInfo says who holds a project's lock.
type LockInfo struct {
	ApplyID string    `json:"apply_id"`
	PlanID  string    `json:"plan_id,omitempty"`
	Holder  string    `json:"holder"` // user@host
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
}

func (li LockInfo) labels(project string) map[string]string {
	return map[string]string{
		planner.LabelKind:    planner.KindLock,
		planner.LabelProject: project,
		planner.LabelApply:   li.ApplyID,
		planner.LabelPlan:    li.PlanID,
		planner.LabelHolder:  li.Holder,
		LabelHost:            li.Host,
		planner.LabelPID:     strconv.Itoa(li.PID),
		planner.LabelSince:   li.Since.UTC().Format(time.RFC3339),
	}
}

// LockInfoFromLabels reads a lock volume's labels.
func LockInfoFromLabels(l map[string]string) LockInfo {
	return lockInfo(planner.ParseLockLabels("", l))
}

// lockInfo adds to the labels the planner reads what only the executor may
// judge: the time the lock was taken.
func lockInfo(l planner.LockLabels) LockInfo {
	since, _ := time.Parse(time.RFC3339, l.Since)
	return LockInfo{ApplyID: l.ApplyID, PlanID: l.PlanID, Holder: l.Holder, Host: l.Host, PID: l.PID, Since: since}
}

// String describes the holder for people: who, pid, since when, the lock
// ID and the plan it applies ("still planning" before its plan is made).
func (li LockInfo) String() string {
	s := fmt.Sprintf("%s (pid %d", li.Holder, li.PID)
	if !li.Since.IsZero() {
		s += ", since " + li.Since.UTC().Format(time.RFC3339)
	}
	s += ", lock ID " + li.ApplyID + ")"
	if li.PlanID != "" {
		return s + " for plan " + li.PlanID
	}
	return s + ", still planning"
}

// Stale reports whether the lock was left by a process of this machine that
// no longer runs (killed, laptop closed): such a lock may be taken over.
func (li LockInfo) Stale() bool {
	host, _ := os.Hostname()
	if li.Host == "" || li.Host != host || li.PID <= 0 || li.PID == os.Getpid() {
		return false
	}
	err := syscall.Kill(li.PID, 0)
	return errors.Is(err, syscall.ESRCH)
}

// LockVolumeName is the volume that holds a project's lock on a node.
func LockVolumeName(project string) string { return "berth-lock-" + project }

// LockedError is returned when another run holds the lock.
type LockedError struct {
	Node   string
	Holder LockInfo
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("the project is locked on node %s by %s; wait for it to finish, retry with -lock-timeout, "+
		"or if that run is gone for good: berth force-unlock %s", e.Node, e.Holder, e.Holder.ApplyID)
}

// Lock is a project's lock held on a set of nodes.
type Lock struct {
	s       *Session
	project string
	Info    LockInfo
	nodes   []string // where it is held, sorted
	// Stale holds the apply IDs of killed runs whose locks were taken over:
	// their containers may need recovery.
	Stale []string
}

// NewApplyID returns a random apply ID.
func NewApplyID() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b[:])
}

// Lock takes the project's lock on every reachable node, in name order, so
// two runs cannot deadlock. When another run holds it, Lock waits up to
// timeout (0: fail at once) and then fails naming the holder. A lock left by
// a killed run of this machine is taken over.
func (s *Session) Lock(ctx context.Context, info LockInfo, timeout time.Duration) (*Lock, error) {
	deadline := time.Now().Add(timeout)
	for {
		l, err := s.tryLock(ctx, info)
		if err == nil {
			return l, nil
		}
		var le *LockedError
		if !errors.As(err, &le) || time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (s *Session) tryLock(ctx context.Context, info LockInfo) (*Lock, error) {
	l := &Lock{s: s, project: s.project, Info: info}
	name := LockVolumeName(s.project)
	for _, nn := range s.names {
		n, err := s.Node(nn)
		if err != nil {
			continue // unreachable: nothing will be done there
		}
		for attempt := 0; ; attempt++ {
			v, err := n.CreateVolume(ctx, name, info.labels(s.project))
			if err != nil {
				l.Release(context.WithoutCancel(ctx))
				return nil, fmt.Errorf("take the lock on node %s: %w", nn, err)
			}
			if v.Labels[planner.LabelApply] == info.ApplyID {
				l.nodes = append(l.nodes, nn)
				break
			}
			holder := LockInfoFromLabels(v.Labels)
			if li, ok, err := lockOn(ctx, n, s.project); err == nil && ok && li.ApplyID == holder.ApplyID {
				holder = li // with the plan it recorded
			}
			if attempt == 0 && holder.Stale() {
				if err := s.takeOver(ctx, n, holder); err == nil {
					if !slices.Contains(l.Stale, holder.ApplyID) {
						l.Stale = append(l.Stale, holder.ApplyID)
					}
					continue
				}
			}
			l.Release(context.WithoutCancel(ctx))
			return nil, &LockedError{Node: nn, Holder: holder}
		}
	}
	return l, nil
}

// takeOver removes a stale lock. A takeover volume makes it atomic: of two
// runs that find the same stale lock, only the one that creates the takeover
// volume removes it.
func (s *Session) takeOver(ctx context.Context, n Node, stale LockInfo) error {
	name := LockVolumeName(s.project) + "-takeover-" + stale.ApplyID
	me := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	v, err := n.CreateVolume(ctx, name, map[string]string{planner.LabelKind: "takeover", planner.LabelProject: s.project, planner.LabelApply: me})
	if err != nil {
		return err
	}
	if v.Labels[planner.LabelApply] != me {
		return errors.New("another run is taking the lock over")
	}
	defer n.RemoveVolume(context.WithoutCancel(ctx), name)
	return releaseOn(ctx, n, s.project, stale.ApplyID)
}

// SetPlan records planID for the lock on every node where it is held:
// apply DIR takes the lock before it gathers and plans, and the holder
// shown to a second run names the plan it applies. Docker cannot change a
// volume's labels, so the lock volume stays as it is (held throughout:
// there is no moment in which another run could take it) and the plan ID
// goes into a second volume, named after the lock's apply ID, that only
// this run creates or removes. Readers of the lock (LockOn, the planner's
// observed state) take the plan from it.
func (l *Lock) SetPlan(ctx context.Context, planID string) error {
	if l.Info.PlanID == planID {
		return nil
	}
	for _, nn := range l.nodes {
		n, err := l.s.Node(nn)
		if err == nil {
			err = setPlanOn(ctx, n, l.project, l.Info.ApplyID, planID)
		}
		if err != nil {
			return fmt.Errorf("record the plan in the lock on node %s: %w", nn, err)
		}
	}
	l.Info.PlanID = planID
	return nil
}

// LockPlanVolumeName is the volume that names the plan of the lock with
// apply ID applyID.
func LockPlanVolumeName(project, applyID string) string {
	return LockVolumeName(project) + "-plan-" + applyID
}

func setPlanOn(ctx context.Context, n Node, project, applyID, planID string) error {
	name := LockPlanVolumeName(project, applyID)
	labels := map[string]string{planner.LabelKind: planner.KindLockPlan, planner.LabelProject: project,
		planner.LabelApply: applyID, planner.LabelPlan: planID}
	for range 2 {
		v, err := n.CreateVolume(ctx, name, labels)
		if err != nil || v.Labels[planner.LabelPlan] == planID {
			return err
		}
		// An earlier plan of this same run: replace it.
		if err := removeIfThere(ctx, n, name); err != nil {
			return err
		}
	}
	return fmt.Errorf("volume %s keeps another plan", name)
}

// removeIfThere removes the named volume; one that is gone already is no
// error.
func removeIfThere(ctx context.Context, n Node, name string) error {
	if err := n.RemoveVolume(ctx, name); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	return nil
}

// LockOn reads the project's lock from a node's volumes (with the plan
// recorded for it); ok is false when the node holds none.
func LockOn(project string, vs []planner.Volume) (LockInfo, bool) {
	live := &planner.Live{Nodes: map[string]*planner.NodeState{"n": {Name: "n", Reachable: true, Volumes: vs}}}
	l, ok := planner.Observe(project, live).Locks()["n"]
	return lockInfo(l), ok
}

// lockOn reads the project's lock on node n.
func lockOn(ctx context.Context, n Node, project string) (LockInfo, bool, error) {
	vs, err := n.Volumes(ctx, map[string]string{planner.LabelProject: project})
	if err != nil {
		return LockInfo{}, false, err
	}
	li, ok := LockOn(project, vs)
	return li, ok, nil
}

// Nodes returns where the lock is held.
func (l *Lock) Nodes() []string { return append([]string(nil), l.nodes...) }

// Release removes the lock from every node where it is held. It only ever
// removes a lock that is this run's.
func (l *Lock) Release(ctx context.Context) error {
	var errs []error
	for _, nn := range l.nodes {
		n, err := l.s.Node(nn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := releaseOn(ctx, n, l.project, l.Info.ApplyID); err != nil {
			errs = append(errs, fmt.Errorf("release the lock on node %s: %w", nn, err))
		}
	}
	l.nodes = nil
	return errors.Join(errs...)
}

// releaseOn removes the lock with apply ID applyID from n, and the plan
// recorded for it.
func releaseOn(ctx context.Context, n Node, project, applyID string) error {
	vs, err := n.Volumes(ctx, map[string]string{planner.LabelProject: project})
	if err != nil {
		return err
	}
	for _, v := range vs {
		switch v.Labels[planner.LabelKind] {
		case planner.KindLock:
			if v.Name != LockVolumeName(project) || v.Labels[planner.LabelApply] != applyID {
				continue
			}
		case planner.KindLockPlan:
			if v.Name != LockPlanVolumeName(project, applyID) {
				continue
			}
		default:
			continue
		}
		if err := removeIfThere(ctx, n, v.Name); err != nil {
			return err
		}
	}
	return nil
}

// ForceUnlock removes the lock with the given ID from every reachable node
// and returns the nodes it was removed from, and the locks of other IDs
// found held, by node.
func (s *Session) ForceUnlock(ctx context.Context, lockID string) (removed []string, held map[string]LockInfo, err error) {
	var errs []error
	held = map[string]LockInfo{}
	for _, nn := range s.names {
		n, err := s.Node(nn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		li, ok, err := lockOn(ctx, n, s.project)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("read the lock on node %s: %w", nn, err))
		case ok && li.ApplyID != lockID:
			held[nn] = li
		case ok:
			if err := releaseOn(ctx, n, s.project, lockID); err != nil {
				errs = append(errs, fmt.Errorf("remove the lock on node %s: %w", nn, err))
			} else {
				removed = append(removed, nn)
			}
		}
	}
	sort.Strings(removed)
	return removed, held, errors.Join(errs...)
}

// Locks returns the lock holders found in a live state, by node.
func Locks(project string, live *planner.Live) map[string]LockInfo {
	out := map[string]LockInfo{}
	for node, l := range planner.Observe(project, live).Locks() {
		out[node] = lockInfo(l)
	}
	return out
}
