package planner

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
)

// rollbackCase is web at v1 with a health check, an env, a label and a
// secret; v2 changes the image, the env, the label and the health check.
func rollbackCase(t *testing.T) (v1, v2 *config.Config, live *Live) {
	nodes := threeNodes()
	mk := func(image, mode string) *config.Config {
		web := svc("web", image, 3)
		web.Ports = []config.Port{{Target: 8080, Published: 8080, Protocol: "tcp"}}
		web.Env = map[string]config.EnvVar{"MODE": {Value: mode}, "TOKEN": {Value: "s3cret", Sensitive: true}}
		web.Labels = map[string]string{"tier": mode}
		web.Health = &config.Health{HTTP: "/healthz", Interval: time.Second, Timeout: 2 * time.Second, Retries: 3}
		if image == "echo:v2" {
			web.Health.HTTP = "/ready"
			web.Command = []string{"serve", "-v"}
		}
		return &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{web}}
	}
	v1, v2 = mk("echo:v1", "one"), mk("echo:v2", "two")
	live = liveFor(nodes)
	return v1, v2, live
}

// A revision recorded by a plan, through its JSON (as the audit label holds
// it), rebuilds the same replica spec: a rollback plan from v2's live state
// replaces every replica with exactly v1's spec, and the secret is only a
// hash in the recorded text.
func TestRollbackRebuildsTheRevision(t *testing.T) {
	v1, v2, live := rollbackCase(t)
	p1 := mustPlan(t, v1, live, Options{})
	b, err := json.Marshal(p1.Revisions["web"])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded revision (one audit label): %d bytes: %s", len(b), b)
	if strings.Contains(string(b), "s3cret") || !strings.Contains(string(b), "sha256:") {
		t.Fatalf("recorded revision holds the secret or no hash: %s", b)
	}
	var rv Revision
	if err := json.Unmarshal(b, &rv); err != nil {
		t.Fatal(err)
	}
	rv.ImageIDs = []string{"sha256:1111"}
	at2 := Simulate(live, mustPlan(t, v2, live, Options{}))

	rb := mustPlan(t, v2, at2, Options{Rollback: &Rollback{ApplyID: "a1", Services: map[string]*Revision{"web": &rv}}})
	if rb.RollbackTo != "a1" || len(rb.Actions) != 3 {
		t.Fatalf("rollback plan: %+v", rb.Actions)
	}
	for i, a := range rb.Actions {
		want := p1.Actions[i].Spec
		if a.Kind != Replace || a.Spec.Labels[LabelHash] != want.Labels[LabelHash] || a.Spec.Labels[LabelSpec] != want.Labels[LabelSpec] {
			t.Fatalf("action %d: %s, spec\n %s\nwant\n %s", i, a.Kind, a.Spec.Labels[LabelSpec], want.Labels[LabelSpec])
		}
		if a.Spec.Env[1].Name != "TOKEN" || a.Spec.Env[1].Secret != "s3cret" || a.Spec.Health.HTTP != "/healthz" || a.Spec.Command != nil {
			t.Fatalf("action %d spec: %+v", i, a.Spec)
		}
	}
	if len(rb.Images) != 0 {
		t.Fatalf("echo:v1 is on every node, yet: %+v", rb.Images)
	}

	// Rolled back, the configuration's plan shows v2 again.
	back := mustPlan(t, v2, Simulate(at2, rb), Options{})
	if len(back.Actions) != 3 || back.Actions[0].Spec.Image != "echo:v2" {
		t.Fatalf("plan after the rollback: %+v", back.Actions)
	}
	// ... as drift to decide on, warned about once for the service.
	for _, a := range back.Actions {
		if !a.Drift || !strings.HasPrefix(a.Reason, "drift: it runs the revision of apply a1 (berth rollback), the configuration differs: ") {
			t.Fatalf("action after the rollback: drift %v, %q", a.Drift, a.Reason)
		}
	}
	if len(back.Warnings) != 1 || !strings.Contains(back.Warnings[0], `service "web" runs the revision of apply a1, restored by berth rollback`) {
		t.Fatalf("warnings: %q", back.Warnings)
	}
}

// The secret's value changed since: its old value is not known, so the
// rollback is refused, naming the variable and never the value.
func TestRollbackRefusesAnUnknownSecret(t *testing.T) {
	v1, v2, live := rollbackCase(t)
	rv := mustPlan(t, v1, live, Options{}).Revisions["web"]
	v2.Services[0].Env["TOKEN"] = config.EnvVar{Value: "0th3r-v4lue", Sensitive: true}
	_, diags := Make(v2, live, Options{Rollback: &Rollback{ApplyID: "a1", Services: map[string]*Revision{"web": rv}}})
	if !diags.HasErrors() || !strings.Contains(diags[0].Summary, "sensitive env TOKEN had another value at apply a1") ||
		strings.Contains(diags.Error(), "s3cret") || strings.Contains(diags.Error(), "0th3r-v4lue") {
		t.Fatalf("diags: %v", diags)
	}
}

// The recorded image ID decides: a node whose echo:v1 is now another image
// does not count, and one image that is nowhere is refused, naming it.
func TestRollbackImageByID(t *testing.T) {
	v1, v2, live := rollbackCase(t)
	rv := mustPlan(t, v1, live, Options{}).Revisions["web"]
	rv.ImageIDs = []string{"sha256:1111"}
	live.Nodes["node2"].Images[0].ID = "sha256:9999" // echo:v1 rebuilt there
	_, diags := Make(v2, live, Options{Rollback: &Rollback{ApplyID: "a1", Services: map[string]*Revision{"web": rv}}})
	if !diags.HasErrors() || !strings.Contains(diags[0].Summary, `service "web" to apply a1: image echo:v1 (`) ||
		!strings.Contains(diags[0].Summary, "is no longer on node2, nor on the local engine") {
		t.Fatalf("diags: %v", diags)
	}
	// The local engine holds it: sent to node2.
	p := mustPlan(t, v2, live, Options{LocalImages: []Image{{ID: "sha256:1111", Tags: []string{"echo:v1"}}},
		Rollback: &Rollback{ApplyID: "a1", Services: map[string]*Revision{"web": rv}}})
	if len(p.Images) != 1 || p.Images[0].Kind != ImageSend || strings.Join(p.Images[0].Nodes, ",") != "node2" {
		t.Fatalf("images: %+v", p.Images)
	}
}
