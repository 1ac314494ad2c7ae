package planner

import (
	"slices"
	"testing"
)

func TestObserve(t *testing.T) {
	lbl := func(svc, r string) map[string]string {
		return map[string]string{LabelProject: "shop", LabelService: svc, LabelReplica: r}
	}
	live := &Live{Nodes: map[string]*NodeState{
		"b": {Name: "b", Reachable: true,
			Containers: []Container{
				{ID: "b1", Name: "shop-web-1", Labels: lbl("web", "1"), State: "restarting",
					Ports: []PortBinding{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
				{ID: "b2", Name: AsideName("shop-web-2", "a1"), Labels: lbl("web", "2"), State: "exited"},
			},
			Foreign:   []Container{{ID: "f", Name: "nginx", Ports: []PortBinding{{HostPort: 443, ContainerPort: 443, Protocol: "tcp"}}}},
			HostPorts: []HostPort{{Protocol: "tcp", Port: 22}, {Protocol: "tcp", Port: 443}, {Protocol: "tcp", Port: 8080}},
			Volumes: []Volume{
				{Name: "berth-lock-shop", Labels: map[string]string{LabelKind: KindLock, LabelProject: "shop", LabelApply: "a1", LabelHolder: "me@x", LabelPID: "7"}},
				{Name: "berth-audit-shop-1-a0", Labels: map[string]string{LabelKind: KindAudit, LabelProject: "shop", LabelApply: "a0", LabelActions: "3"}},
				{Name: "commit", Labels: map[string]string{LabelKind: KindCommit, LabelProject: "shop", LabelApply: "a1"}},
			}},
		"a": {Name: "a", Reachable: true, Containers: []Container{
			{ID: "a1", Name: "shop-web-1", Labels: lbl("web", "1"), State: "exited"},
			{ID: "a2", Name: "shop-web-x", Labels: lbl("web", "x"), State: "running"},
		}},
		"c": {Name: "c", Error: "connection refused"},
	}}
	o := Observe("shop", live)
	if got := o.Nodes(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Nodes() = %v", got)
	}
	var ids []string
	for _, r := range o.Replicas("web") {
		ids = append(ids, r.Container.ID)
	}
	if !slices.Equal(ids, []string{"a2", "a1", "b1"}) { // index 0 first, then by node
		t.Errorf("Replicas(web) = %v", ids)
	}
	if as := o.Aside(); len(as) != 1 || as[0].AsideApply != "a1" || as[0].Original != "shop-web-2" || as[0].Index != 2 {
		t.Errorf("Aside() = %+v", as)
	}
	if rows := o.Rows("web"); len(rows) != 4 || rows[3].Container.ID != "b2" {
		t.Errorf("Rows(web) has %d rows", len(rows))
	}
	if by := o.ByIndex("web"); len(by[1]) != 2 || len(by[0]) != 1 {
		t.Errorf("ByIndex(web) = %v", by)
	}
	if !o.Container("b", "b1").Running() || o.Container("a", "a1").Running() || o.Container("a", "zz") != nil {
		t.Error("Running: restarting is running, exited is not, a missing container is nil")
	}
	var holds []string
	for _, h := range o.Holds("b") {
		holds = append(holds, h.String()+" "+h.Who())
	}
	want := []string{"443/tcp container nginx (not managed by berth)", "22/tcp a host process", `8080/tcp service "web" replica 1`}
	if !slices.Equal(holds, want) {
		t.Errorf("Holds(b) = %q, want %q", holds, want)
	}
	if l := o.Locks()["b"]; l.ApplyID != "a1" || l.Holder != "me@x" || l.PID != 7 {
		t.Errorf("Locks()[b] = %+v", l)
	}
	if !o.Committing("a1") || o.Committing("a0") {
		t.Error("Committing")
	}
	if au := o.Audit(); len(au) != 1 || au[0].ApplyID != "a0" || au[0].Actions != 3 || au[0].Node != "b" {
		t.Errorf("Audit() = %+v", au)
	}
}

func TestShortID(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:0123456789abcdef": "sha256:0123456789ab",
		"0123456789abcdef":        "0123456789ab",
		"sha256:0123":             "sha256:0123",
		"abc":                     "abc",
	} {
		if got := ShortID(in); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", in, got, want)
		}
	}
}
