package executor

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/berth-dev/berth/planner"
)

// AuditKeep is how many audit records berth keeps per project on each node.
const AuditKeep = 20

// AuditRecord is one apply's record, kept on every node it touched as the
// labels of a small named volume (no file, no agent).
type AuditRecord struct {
	ApplyID string    `json:"apply_id"`
	PlanID  string    `json:"plan_id"`
	Holder  string    `json:"holder"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Result  string    `json:"result"` // applied | rolled back | paused | failed
	Actions int       `json:"actions"`
}

// WriteAudit records an apply on each node, and drops the oldest records
// beyond AuditKeep. Errors are returned but never undo the apply.
func (s *Session) WriteAudit(ctx context.Context, nodes []string, r AuditRecord) error {
	var firstErr error
	for _, nn := range nodes {
		n, err := s.Node(nn)
		if err != nil {
			continue
		}
		name := fmt.Sprintf("berth-audit-%s-%d-%s", s.project, r.Started.UnixMilli(), r.ApplyID)
		_, err = n.CreateVolume(ctx, name, map[string]string{
			planner.LabelKind:    planner.KindAudit,
			planner.LabelProject: s.project,
			planner.LabelApply:   r.ApplyID,
			planner.LabelPlan:    r.PlanID,
			planner.LabelHolder:  r.Holder,
			// Sub-second times, so that applies within one second are
			// ordered (time.RFC3339 parses them, and the older labels).
			planner.LabelSince:  r.Started.UTC().Format(time.RFC3339Nano),
			"berth.ended":       r.Ended.UTC().Format(time.RFC3339Nano),
			planner.LabelResult: r.Result,
			"berth.actions":     strconv.Itoa(r.Actions),
		})
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("audit record on node %s: %w", nn, err)
			continue
		}
		vs, err := n.Volumes(ctx, map[string]string{planner.LabelKind: planner.KindAudit, planner.LabelProject: s.project})
		if err != nil {
			continue
		}
		recs := AuditRecords(s.project, vs)
		for i := AuditKeep; i < len(recs); i++ {
			n.RemoveVolume(ctx, recs[i].volume)
		}
	}
	return firstErr
}

type auditVol struct {
	AuditRecord
	volume string
}

// AuditRecords reads audit records from volumes, newest first.
func AuditRecords(project string, vs []planner.Volume) []auditVol {
	var out []auditVol
	for _, v := range vs {
		l := v.Labels
		if l[planner.LabelKind] != planner.KindAudit || l[planner.LabelProject] != project {
			continue
		}
		started, _ := time.Parse(time.RFC3339, l[planner.LabelSince])
		ended, _ := time.Parse(time.RFC3339, l["berth.ended"])
		n, _ := strconv.Atoi(l["berth.actions"])
		out = append(out, auditVol{AuditRecord{ApplyID: l[planner.LabelApply], PlanID: l[planner.LabelPlan], Holder: l[planner.LabelHolder],
			Started: started, Ended: ended, Result: l[planner.LabelResult], Actions: n}, v.Name})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].volume > out[j].volume
	})
	return out
}

// Audit returns the audit records found in a live state, newest first,
// each apply once (it is recorded on every node it touched).
func Audit(project string, live *planner.Live) []AuditRecord {
	seen := map[string]bool{}
	var all []auditVol
	for _, st := range live.Nodes {
		all = append(all, AuditRecords(project, st.Volumes)...)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].Started.Equal(all[j].Started) {
			return all[i].Started.After(all[j].Started)
		}
		return all[i].ApplyID > all[j].ApplyID
	})
	var out []AuditRecord
	for _, r := range all {
		if !seen[r.ApplyID] {
			seen[r.ApplyID] = true
			out = append(out, r.AuditRecord)
		}
	}
	return out
}
