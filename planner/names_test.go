package planner

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
)

func oneNodeWeb(replicas int) (*config.Config, *Live) {
	nodes := threeNodes()[:1]
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes, Services: []*config.Service{svc("web", "echo:v1", replicas)}}
	return cfg, liveFor(nodes)
}

// deployed is live after cfg's first plan was carried out.
func deployed(t *testing.T, cfg *config.Config, live *Live) *Live {
	t.Helper()
	p, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return Simulate(live, p)
}

func wantNameError(t *testing.T, diags hcl.Diagnostics, wants ...string) {
	t.Helper()
	if !diags.HasErrors() {
		t.Fatalf("no error")
	}
	text := diags.Error()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("the error lacks %q:\n%s", w, text)
		}
	}
}

// Two of the project's own containers whose replica labels were swapped
// by hand: each is replaced under its right name, one batch after the
// other, and the first replace would take the name the second's old
// container still holds. The plan says so instead of failing in apply.
func TestOwnContainerHoldsName(t *testing.T) {
	cfg, live := oneNodeWeb(2)
	live = deployed(t, cfg, live)
	st := live.Nodes["node1"]
	for i := range st.Containers {
		c := &st.Containers[i]
		c.Labels[LabelReplica] = map[string]string{"1": "2", "2": "1"}[c.Labels[LabelReplica]]
	}
	_, diags := Make(cfg, live, Options{})
	wantNameError(t, diags, "Container name demo-web-", "node node1", "a container of this project labelled as service \"web\" replica ", "name and labels disagree")
}

// A container of the project under a replica's name that the plan removes
// first (a scale-down delete) frees the name for the create that follows.
func TestOwnContainerFreedBeforeCreate(t *testing.T) {
	cfg, live := oneNodeWeb(2)
	live = deployed(t, cfg, live)
	st := live.Nodes["node1"]
	for i := range st.Containers {
		if c := &st.Containers[i]; c.Name == "demo-web-1" {
			c.Labels[LabelReplica] = "5" // deleted as a scale-down
		}
	}
	cfg.Services[0].Replicas = 1
	p, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var kinds []string
	for _, a := range p.Actions {
		kinds = append(kinds, string(a.Kind)+" "+a.Container)
	}
	if got := strings.Join(kinds, ", "); !strings.Contains(got, "delete demo-web-1, create demo-web-1") {
		t.Fatalf("actions %s, want the delete of demo-web-1, then its create", got)
	}
}

// A container set aside by an interrupted apply is restored under its
// name: if a container outside the project took that name meanwhile, the
// plan fails naming it.
func TestRestoreNameHeldByForeign(t *testing.T) {
	cfg, live := oneNodeWeb(1)
	live = deployed(t, cfg, live)
	st := live.Nodes["node1"]
	st.Containers[0].Name = AsideName("demo-web-1", "a1b2c3d4")
	st.Containers[0].State = "exited"
	st.Foreign = append(st.Foreign, Container{ID: "f00d" + strings.Repeat("0", 60), Name: "demo-web-1", Image: "nginx:1.27", State: "running"})
	_, diags := Make(cfg, live, Options{})
	wantNameError(t, diags, "would restore service \"web\" replica 1", "container not managed by berth (ID f00d00000000, image nginx:1.27, running)")
}

// Two node blocks on one engine are refused only when the project has
// something to place or find: a project with no service and no container
// plans nothing there.
func TestSharedEngine(t *testing.T) {
	nodes := threeNodes()
	live := liveFor(nodes)
	for _, n := range []string{"node1", "node3"} {
		live.Nodes[n].Engine.ID = "ENGINE-A"
	}
	live.Nodes["node2"].Engine.ID = "ENGINE-B"
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: nodes}
	if _, diags := Make(cfg, live, Options{}); diags.HasErrors() {
		t.Fatalf("a project with nothing in it: %v", diags)
	}
	cfg.Services = []*config.Service{svc("web", "echo:v1", 1)}
	_, diags := Make(cfg, live, Options{})
	wantNameError(t, diags, "Nodes node1 and node3 reach the same Docker engine", "engine ID, ENGINE-A")
	// Unreachable nodes have no engine ID to compare.
	live.Nodes["node3"] = &NodeState{Name: "node3", Error: "node3: connection refused"}
	if _, diags := Make(cfg, live, Options{}); diags.HasErrors() {
		t.Fatalf("node3 unreachable: %v", diags)
	}
}

// containerNameAs is ContainerName, whatever name it is handed.
func TestContainerNameAs(t *testing.T) {
	for _, have := range []string{"", "demo-web-1", "demo-web-12", "demo-web-2", "demo-webx1", "demo-we-b-1", "demox-web-1", "demo-web-1x", "demo_web_1"} {
		for _, r := range []int{1, 2, 12, 100} {
			want := ContainerName("demo", "web", r)
			got := containerNameAs(have, "demo", "web", r)
			if got != want {
				t.Errorf("containerNameAs(%q, demo, web, %d) = %q, want %q", have, r, got, want)
			}
		}
	}
}
