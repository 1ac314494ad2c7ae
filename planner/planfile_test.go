package planner

import (
	"strings"
	"testing"
)

func TestEncodeDecodePlanFile(t *testing.T) {
	sp := &SavedPlan{BerthVersion: "v", ConfigDir: "/cfg", Plan: &Plan{FormatVersion: FormatVersion, ID: "abc", Project: "demo", Actions: []Action{}}}
	b, err := EncodePlanFile(sp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "}\n") || !strings.Contains(string(b), `"format_version": "`+FormatVersion+`"`) {
		t.Errorf("encoded: %s", b)
	}
	got, err := DecodePlanFile("x.plan", b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Plan.ID != "abc" || got.ConfigDir != "/cfg" || got.BerthVersion != "v" {
		t.Errorf("decoded %+v", got)
	}
	for _, tc := range []struct{ in, want string }{
		{`project "demo" {}`, "x.plan is not a berth plan file"},
		{`{"format_version": "1.0"}`, "x.plan is not a berth plan file"},
		{`{"plan": {}}`, "x.plan is not a berth plan file"},
		{`{"format_version": "9.0", "plan": {}}`, "x.plan has plan format 9.0; this berth reads " + FormatVersion},
	} {
		if _, err := DecodePlanFile("x.plan", []byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
	}
}
