package swarmplan

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

const testHCL = `
project "shop" {
  swarm {
    managers = ["node1"]
  }
}
node "node1" {
  address = "10.0.0.1"
  labels  = { zone = "a", role = "web" }
}
node "node2" {
  address = "10.0.0.2"
  labels  = { zone = "b", role = "web" }
}
node "node3" {
  address = "10.0.0.3"
  labels  = { zone = "c", role = "db" }
}
service "db" {
  image = "postgres:16"
  sensitive_env = { PASSWORD = "hunter2-secret" }
  placement {
    constraint = node.labels.role == "db"
  }
  volume {
    source = "data"
    target = "/var/lib/postgresql/data"
  }
}
service "web" {
  image      = "IMAGE"
  replicas   = 3
  depends_on = ["db"]
  command    = ["serve", "-v"]
  env        = { MODE = "prod" }
  port {
    target    = 8080
    published = 80
  }
  placement {
    spread = node.labels.zone
  }
  resources {
    cpus   = 0.5
    memory = "256MiB"
  }
  health {
    cmd = ["/app", "check"]
  }
  update {
    parallelism = 2
    monitor     = "2s"
  }
}
`

func load(t *testing.T, image string) *config.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(strings.ReplaceAll(testHCL, "IMAGE", image)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(dir, config.Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}

func testLive() *Live {
	l := &Live{Manager: "node1", Networks: map[string]string{}, Images: map[string]Image{
		"web:v1":      {Found: true, ID: "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
		"web:v2":      {Found: true, ID: "sha256:2222222222222222222222222222222222222222222222222222222222222222"},
		"postgres:16": {Found: true, ID: "sha256:3333", RepoDigests: []string{"postgres@sha256:abcd"}},
	}}
	for i, h := range []string{"node1", "node2", "node3"} {
		n := swarm.Node{ID: "id-" + h, Description: swarm.NodeDescription{Hostname: h}}
		n.Status.Addr = "10.0.0." + string(rune('1'+i))
		n.Version.Index = 10
		n.Spec.Availability = swarm.NodeAvailabilityActive
		l.Nodes = append(l.Nodes, n)
	}
	return l
}

// converge makes live what applying p would make it, as the daemon stores
// it: networks by ID, node labels set, every task running.
func converge(t *testing.T, p *planner.Plan, cfg *config.Config, live *Live) {
	t.Helper()
	if p.Swarm.Network.Create {
		live.NetworkID = "net-id"
		live.Networks["net-id"] = p.Swarm.Network.Name
	}
	for _, l := range p.Swarm.NodeLabels {
		for i := range live.Nodes {
			n := &live.Nodes[i]
			if n.ID != l.NodeID {
				continue
			}
			if n.Spec.Labels == nil {
				n.Spec.Labels = map[string]string{}
			}
			if l.Kind == planner.Delete {
				delete(n.Spec.Labels, l.Label)
			} else {
				n.Spec.Labels[l.Label] = l.Value
			}
			n.Version.Index++
		}
	}
	specs, err := Specs(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range p.Swarm.Services {
		if ss.Kind == "" {
			continue
		}
		spec := specs[ss.Service]
		for i := range spec.TaskTemplate.Networks {
			spec.TaskTemplate.Networks[i].Target = "net-id"
		}
		// What the daemon fills in with its defaults.
		spec.TaskTemplate.RestartPolicy.Delay = new(time.Duration)
		spec.TaskTemplate.ContainerSpec.Isolation = "default"
		if spec.TaskTemplate.Resources == nil {
			spec.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{}, Reservations: &swarm.Resources{}}
		}
		spec.UpdateConfig.MaxFailureRatio = 0
		found := false
		for i := range live.Services {
			if live.Services[i].ID == ss.ID {
				live.Services[i].Spec = spec
				live.Services[i].Version.Index++
				found = true
			}
		}
		if !found {
			s := swarm.Service{ID: "svc-" + ss.Service, Spec: spec}
			s.Version.Index = 100
			live.Services = append(live.Services, s)
			for slot := 1; slot <= ss.Replicas; slot++ {
				live.Tasks = append(live.Tasks, swarm.Task{ServiceID: s.ID, Slot: slot, DesiredState: swarm.TaskStateRunning,
					Status: swarm.TaskStatus{State: swarm.TaskStateRunning}})
			}
		}
	}
}

func TestPlanConvergesWithoutPerpetualDiff(t *testing.T) {
	cfg := load(t, "web:v1")
	live := testLive()
	p, diags := Make(cfg, live, Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(p.Actions) != 2 || p.Actions[0].Service != "db" || p.Actions[1].Service != "web" || p.Actions[0].Kind != planner.Create {
		t.Fatalf("actions: want create db then web (depends_on), got %+v", p.Actions)
	}
	var labels []string
	for _, l := range p.Swarm.NodeLabels {
		labels = append(labels, l.Node+" "+l.Label+"="+l.Value)
	}
	want := "node1 berth.shop.web.spread=a|node2 berth.shop.web.spread=b|node3 berth.shop.db=true|node3 berth.shop.web.spread=c"
	if got := strings.Join(labels, "|"); got != want {
		t.Errorf("node labels:\n got %s\nwant %s", got, want)
	}
	// The sensitive value is in no output of the plan.
	js, _ := json.Marshal(p)
	var text bytes.Buffer
	p.WriteText(&text)
	if strings.Contains(string(js)+text.String(), "hunter2-secret") {
		t.Errorf("the plan holds the sensitive value")
	}
	specs, err := Specs(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := specs["db"]
	if cs := db.TaskTemplate.ContainerSpec; cs.Image != "postgres@sha256:abcd" || len(cs.Env) != 1 || cs.Env[0] != "PASSWORD=hunter2-secret" {
		t.Errorf("db spec: image %q env %q", cs.Image, cs.Env)
	}
	web := specs["web"]
	if web.EndpointSpec.Mode != swarm.ResolutionModeDNSRR || web.EndpointSpec.Ports[0].PublishMode != swarm.PortConfigPublishModeHost {
		t.Errorf("web endpoint: %+v", web.EndpointSpec)
	}
	if web.UpdateConfig.Order != "stop-first" || web.UpdateConfig.FailureAction != "rollback" || web.UpdateConfig.Parallelism != 2 {
		t.Errorf("web update config: %+v", web.UpdateConfig)
	}
	if r := web.TaskTemplate.Resources; r.Limits.NanoCPUs != 5e8 || r.Reservations.MemoryBytes != 256<<20 {
		t.Errorf("web resources: %+v %+v", r.Limits, r.Reservations)
	}

	converge(t, p, cfg, live)
	// The apply ID the executor records on every service it changes is
	// no difference.
	for i := range live.Services {
		live.Services[i].Spec.Labels[LabelApply] = "1d27d18e"
	}
	p2, _ := Make(cfg, live, Options{})
	if !p2.Empty() {
		var b bytes.Buffer
		p2.WriteText(&b)
		t.Fatalf("second plan is not empty:\n%s", b.String())
	}

	// An image change is one field.
	cfg2 := load(t, "web:v2")
	p3, _ := Make(cfg2, live, Options{})
	if len(p3.Actions) != 1 || p3.Actions[0].Kind != planner.Update || len(p3.Actions[0].Changes) != 1 {
		t.Fatalf("image change: %+v", p3.Actions)
	}
	if c := p3.Actions[0].Changes[0]; c.Field != "image" || c.Old != "web:v1 (image 111111111111)" || c.New != "web:v2 (image 222222222222)" {
		t.Errorf("image change: %+v", c)
	}
	if ss := p3.Swarm.Services[1]; ss.Version != 100 || ss.ID != "svc-web" {
		t.Errorf("the update is planned against %+v", ss)
	}

	// A task not running is drift.
	live.Tasks[1].Status.State = swarm.TaskStateFailed
	live.Tasks[1].Status.Err = "exit 1"
	p4, _ := Make(cfg, live, Options{})
	if len(p4.Actions) != 1 || !p4.Actions[0].Drift || !strings.Contains(p4.Actions[0].Reason, "2 of 3 tasks running") {
		t.Errorf("drift: %+v", p4.Actions)
	}

	// A saved plan is stale once a service's version moved.
	if err := CheckFresh(p3, live); err != nil {
		t.Errorf("fresh plan refused: %v", err)
	}
	live.Services[1].Version.Index++
	err = CheckFresh(p3, live)
	if err == nil || !strings.Contains(err.Error(), "service shop-web version 101") {
		t.Errorf("stale plan: %v", err)
	}
}

func TestSpecsRefusesOtherSecret(t *testing.T) {
	cfg := load(t, "web:v1")
	p, _ := Make(cfg, testLive(), Options{})
	cfg.Service("db").Env["PASSWORD"] = config.EnvVar{Value: "other", Sensitive: true}
	if _, err := Specs(p, cfg); err == nil || !strings.Contains(err.Error(), "PASSWORD") {
		t.Errorf("Specs with another secret: %v", err)
	}
}

func TestDestroyDeletesEveryService(t *testing.T) {
	cfg := load(t, "web:v1")
	live := testLive()
	p, _ := Make(cfg, live, Options{})
	converge(t, p, cfg, live)
	d, _ := Make(cfg, live, Options{Destroy: true})
	if len(d.Actions) != 2 || d.Actions[0].Kind != planner.Delete {
		t.Errorf("destroy: %+v", d.Actions)
	}
	// The labels berth set are removed too.
	if len(d.Swarm.NodeLabels) != 4 || d.Swarm.NodeLabels[0].Kind != planner.Delete {
		t.Errorf("destroy labels: %+v", d.Swarm.NodeLabels)
	}
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestPlanTextGolden renders a first plan and an image change as text.
func TestPlanTextGolden(t *testing.T) {
	cfg := load(t, "web:v1")
	live := testLive()
	p, _ := Make(cfg, live, Options{})
	var b bytes.Buffer
	p.WriteText(&b)
	converge(t, p, cfg, live)
	p2, _ := Make(load(t, "web:v2"), live, Options{})
	b.WriteString("\n----\n\n")
	p2.WriteText(&b)
	golden := filepath.Join("testdata", "plan.txt")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != b.String() {
		t.Errorf("plan text differs from %s:\n%s", golden, b.String())
	}
}
