package planner

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

// savedRoundTrip is what apply of a plan file sees: the plan after encoding
// and decoding.
func savedRoundTrip(t *testing.T, p *Plan) *Plan {
	t.Helper()
	b, err := EncodePlanFile(&SavedPlan{Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := DecodePlanFile("test.plan", b)
	if err != nil {
		t.Fatal(err)
	}
	return sp.Plan
}

// staleSections splits a StaleError's text into its per-node sections.
func staleSections(t *testing.T, err error) map[string]string {
	t.Helper()
	var se *StaleError
	if !errors.As(err, &se) {
		t.Fatalf("not a *StaleError: %v", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "stale plan: ") {
		t.Errorf("error does not start with \"stale plan: \": %s", msg)
	}
	out := map[string]string{}
	for _, sec := range strings.Split(msg, "\n  node ")[1:] {
		name, body, _ := strings.Cut(sec, ":")
		out[name] = body
	}
	if len(out) != len(se.Nodes) {
		t.Errorf("%d node sections for %d changed nodes: %s", len(out), len(se.Nodes), msg)
	}
	return out
}

func TestCheckFreshNamesNodeAndChange(t *testing.T) {
	nodes := threeNodes()
	web := svc("web", "echo:v1", 3)
	web.Ports = []config.Port{{Target: 80, Published: 8080, Protocol: "tcp"}}
	web.Resources.MemoryBytes = 256 << 20
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{web}}
	live := liveFor(nodes)
	first, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	live = Simulate(live, first)
	shop := Container{ID: "shop1" + strings.Repeat("0", 59), Name: "shop-db-1", State: "running", MemoryBytes: 1 << 30,
		Labels: map[string]string{LabelProject: "shop", LabelService: "db"}}
	live.Nodes["node3"].Foreign = append(live.Nodes["node3"].Foreign, shop)
	p, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	saved := savedRoundTrip(t, p)
	if err := CheckFresh(saved, live); err != nil {
		t.Fatalf("unchanged cluster: %v", err)
	}

	// Changes the plan does not depend on keep it fresh: host processes on
	// ports the plan does not bind (one in the auto range: another
	// project's ingress backend moves there on every update), an unlabelled
	// container without ports, a stopped container of another project.
	quiet := cloneLive(live)
	quiet.Nodes["node1"].HostPorts = append(quiet.Nodes["node1"].HostPorts, HostPort{Protocol: "tcp", Port: 9999}, HostPort{Protocol: "tcp", Port: 30001})
	quiet.Nodes["node2"].Foreign = append(quiet.Nodes["node2"].Foreign, Container{ID: "q", Name: "quiet", State: "running", MemoryBytes: 1 << 30})
	quiet.Nodes["node2"].Foreign = append(quiet.Nodes["node2"].Foreign, Container{ID: "s", Name: "shop-old", State: "exited", MemoryBytes: 1 << 30,
		Labels: map[string]string{LabelProject: "shop"}})
	if err := CheckFresh(saved, quiet); err != nil {
		t.Errorf("changes the plan does not depend on made it stale: %v", err)
	}

	now := cloneLive(live)
	// node1: the replica stopped.
	for i := range now.Nodes["node1"].Containers {
		now.Nodes["node1"].Containers[i].State = "exited"
	}
	// node2: an unlabelled container publishes the plan's port on another
	// address.
	now.Nodes["node2"].Foreign = append(now.Nodes["node2"].Foreign, Container{ID: "squat" + strings.Repeat("0", 59), Name: "squatter", State: "running",
		Ports: []PortBinding{{HostIP: "10.0.0.2", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}})
	// node3: the other project reserves more memory.
	now.Nodes["node3"].Foreign[0].MemoryBytes = 2 << 30
	err := CheckFresh(saved, now)
	secs := staleSections(t, err)
	want := map[string][]string{
		"node1": {"- container demo-web-1 ", " running hash=", "+ container demo-web-1 ", " exited hash="},
		"node2": {"+ foreign container squatter squat0000000 ports 8080/tcp"},
		"node3": {`- berth project "shop" reserves 0 CPUs and 1 GiB of memory (1 running container)`,
			`+ berth project "shop" reserves 0 CPUs and 2 GiB of memory (1 running container)`},
	}
	for node, parts := range want {
		body, ok := secs[node]
		if !ok {
			t.Errorf("the error does not name %s: %v", node, err)
			continue
		}
		for _, part := range parts {
			if !strings.Contains(body, part) {
				t.Errorf("%s: %q missing from %q", node, part, body)
			}
		}
	}
	if len(secs) != 3 {
		t.Errorf("changed nodes %v, want node1, node2, node3", secs)
	}

	// A node that became unreachable.
	gone := cloneLive(live)
	gone.Nodes["node2"] = &NodeState{Name: "node2", Error: "node2: connect to 10.0.0.2:22: connection refused"}
	secs = staleSections(t, CheckFresh(saved, gone))
	if body := secs["node2"]; !strings.Contains(body, "is unreachable now: node2: connect to 10.0.0.2:22: connection refused") || len(secs) != 1 {
		t.Errorf("unreachable node: %v", secs)
	}
}

// Applying a saved plan supplies the sensitive values again; one that
// differs from when the plan was made is refused, and no error shows
// either value.
func TestFillSecretsRefusesChangedValue(t *testing.T) {
	const dir = "testdata/sensitive-env-masked"
	load := func(value string) *config.Config {
		cfg, diags := config.Load(dir, config.Inputs{Args: []config.VarArg{{Value: "api_key=" + value}}})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg
	}
	const first, second = "s3cret-at-plan-time", "s3cret-at-apply-time"
	cfg := load(first)
	p, diags := Make(cfg, baseLive(cfg), Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b, err := EncodePlanFile(&SavedPlan{Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), first) {
		t.Fatal("the sensitive value is in the plan file")
	}
	sensitive := 0
	for _, a := range p.Actions {
		for _, e := range a.Spec.Env {
			if e.Sensitive {
				sensitive++
			}
		}
	}
	if sensitive == 0 {
		t.Fatal("the plan has no sensitive env to check")
	}

	// A different value: refused, naming the service and variable only.
	saved, _ := DecodePlanFile("test.plan", b)
	err = FillSecrets(saved.Plan, load(second))
	if err == nil {
		t.Fatal("a plan made with another sensitive value was accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, `service "web": sensitive env API_KEY has a different value than when the plan was made`) {
		t.Errorf("error: %s", msg)
	}
	if strings.Contains(msg, first) || strings.Contains(msg, second) {
		t.Errorf("the error shows a sensitive value: %s", msg)
	}
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("one error per service and variable, not per replica: %q", msg)
	}
	for _, a := range saved.Plan.Actions {
		for _, e := range a.Spec.Env {
			if e.Secret == second {
				t.Error("the different value was filled in anyway")
			}
		}
	}

	// The same value: filled in.
	saved, _ = DecodePlanFile("test.plan", b)
	if err := FillSecrets(saved.Plan, load(first)); err != nil {
		t.Fatal(err)
	}
	for _, a := range saved.Plan.Actions {
		for _, e := range a.Spec.Env {
			if e.Sensitive && e.Secret != first {
				t.Errorf("%s %s: secret not filled in", a.Container, e.Name)
			}
		}
	}
}
