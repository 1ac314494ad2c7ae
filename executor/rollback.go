package executor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/planner"
)

// RollbackTarget picks the revisions berth rollback restores from the
// project's audit records in live: those of the apply named by to (an apply
// ID or a unique prefix of one), else of the applied record before the
// latest applied one (the revision running now). Only an apply whose
// result was "applied" and that recorded revisions can be returned to.
func RollbackTarget(project string, live *planner.Live, to string) (*planner.Rollback, error) {
	recs := Audit(project, live)
	if to != "" {
		var found []AuditRecord
		for _, r := range recs {
			if strings.HasPrefix(r.ApplyID, to) {
				found = append(found, r)
			}
		}
		switch {
		case len(found) == 0:
			return nil, fmt.Errorf("no audit record of apply %s on the reachable nodes (berth keeps the last %d applies per node; berth status lists the latest)", to, AuditKeep)
		case len(found) > 1:
			ids := make([]string, len(found))
			for i, r := range found {
				ids[i] = r.ApplyID
			}
			return nil, fmt.Errorf("apply ID %s is ambiguous: it starts %s", to, strings.Join(ids, ", "))
		}
		r := found[0]
		if r.Result != ResultApplied {
			return nil, fmt.Errorf("apply %s ended %q: only an applied revision can be rolled back to", r.ApplyID, r.Result)
		}
		if len(r.Revisions) == 0 {
			return nil, fmt.Errorf("apply %s recorded no revision to roll back to (a destroy, or an apply by a berth before rollback)", r.ApplyID)
		}
		return &planner.Rollback{ApplyID: r.ApplyID, Services: r.Revisions}, nil
	}
	var applied []AuditRecord
	for _, r := range recs {
		if r.Result == ResultApplied {
			applied = append(applied, r)
		}
	}
	if len(applied) < 2 {
		return nil, fmt.Errorf("no earlier successful apply to roll back to: the audit records on the reachable nodes hold %d applied", len(applied))
	}
	prev := applied[1]
	if len(prev.Revisions) == 0 {
		return nil, fmt.Errorf("the previous successful apply, %s, recorded no revision to roll back to (a destroy, or an apply by a berth before rollback); name another with -to", prev.ApplyID)
	}
	return &planner.Rollback{ApplyID: prev.ApplyID, Services: prev.Revisions}, nil
}

// recordedRevisions are the plan's revisions with the IDs their image
// references have, now that the apply succeeded, on the nodes that run the
// service (one image list per node). A revision whose nodes cannot be
// asked keeps none: a rollback to it then goes by the image's name.
func (s *Session) recordedRevisions(ctx context.Context, p *planner.Plan) map[string]*planner.Revision {
	if len(p.Revisions) == 0 {
		return nil
	}
	nodesOf := map[string][]string{}
	for _, sp := range p.Services {
		for _, n := range sp.Placement {
			if !slices.Contains(nodesOf[sp.Name], n) {
				nodesOf[sp.Name] = append(nodesOf[sp.Name], n)
			}
		}
	}
	held := map[string][]planner.Image{}
	out := make(map[string]*planner.Revision, len(p.Revisions))
	for _, svc := range slices.Sorted(maps.Keys(p.Revisions)) {
		rv := *p.Revisions[svc]
		rv.ImageIDs = nil
		out[svc] = &rv
		ref := planner.NormalizeRef(rv.Image)
		for _, nn := range nodesOf[svc] {
			imgs, ok := held[nn]
			if !ok {
				if n, err := s.Node(nn); err == nil {
					imgs, _ = n.Images(ctx)
				}
				held[nn] = imgs
			}
			for _, img := range imgs {
				if slices.ContainsFunc(img.Tags, func(t string) bool { return planner.NormalizeRef(t) == ref }) && !slices.Contains(rv.ImageIDs, img.ID) {
					rv.ImageIDs = append(rv.ImageIDs, img.ID)
				}
			}
		}
		slices.Sort(rv.ImageIDs)
	}
	return out
}
