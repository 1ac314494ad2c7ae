package executor

import (
	"context"
	"encoding/json"
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
	// Nodes is the project's node set (see Session.NodeSet): a node whose
	// block disappears is found again from it.
	// Not in status -json: it holds local paths (identity files).
	Nodes []planner.RecordedNode `json:"-"`
	// Revisions are the services' specs an applied plan left running
	// (sensitive values as their hash only), for berth rollback; one label
	// per service on the record's volume.
	// Not in status -json: they are for berth rollback only.
	Revisions map[string]*planner.Revision `json:"-"`
	// RollbackTo is set on the record of a berth rollback: the apply
	// whose revisions it restored.
	RollbackTo string `json:"rollback_to,omitempty"`
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
		labels := map[string]string{
			planner.LabelKind:    planner.KindAudit,
			planner.LabelProject: s.project,
			planner.LabelApply:   r.ApplyID,
			planner.LabelPlan:    r.PlanID,
			planner.LabelHolder:  r.Holder,
			// Sub-second times, so that applies within one second are
			// ordered (time.RFC3339 parses them, and the older labels).
			planner.LabelSince:   r.Started.UTC().Format(time.RFC3339Nano),
			planner.LabelEnded:   r.Ended.UTC().Format(time.RFC3339Nano),
			planner.LabelResult:  r.Result,
			planner.LabelActions: strconv.Itoa(r.Actions),
		}
		if r.Nodes != nil {
			labels[planner.LabelNodes] = planner.NodesLabel(r.Nodes)
		}
		if r.RollbackTo != "" {
			labels[planner.LabelRollbackTo] = r.RollbackTo
		}
		for svc, rv := range r.Revisions {
			if b, err := json.Marshal(rv); err == nil {
				labels[planner.LabelRevisionPrefix+svc] = string(b)
			}
		}
		_, err = n.CreateVolume(ctx, name, labels)
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
	nodes  []planner.RecordedNode
}

// AuditRecords reads audit records from volumes, newest first.
func AuditRecords(project string, vs []planner.Volume) []auditVol {
	return sortAudit(planner.ParseAudit(project, "", vs))
}

// sortAudit adds the times to the records the planner's index reads, and
// orders them newest first.
func sortAudit(ls []planner.AuditLabels) []auditVol {
	out := make([]auditVol, 0, len(ls))
	for _, l := range ls {
		started, _ := time.Parse(time.RFC3339, l.Started)
		ended, _ := time.Parse(time.RFC3339, l.Ended)
		out = append(out, auditVol{AuditRecord{ApplyID: l.ApplyID, PlanID: l.PlanID, Holder: l.Holder,
			Started: started, Ended: ended, Result: l.Result, Actions: l.Actions, Nodes: l.Nodes,
			Revisions: l.Revisions, RollbackTo: l.RollbackTo}, l.Volume, l.Nodes})
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
	all := sortAudit(planner.Observe(project, live).Audit())
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
