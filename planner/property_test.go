package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/berth-dev/berth/config"
)

// randomConfig builds a random but valid configuration.
func randomConfig(t testing.TB, r *rand.Rand) *config.Config {
	cfg := &config.Config{Project: config.Project{Name: "prop"}}
	nn := 1 + r.Intn(6)
	zones := []string{"a", "b", "c"}
	roles := []string{"web", "db"}
	for i := 0; i < nn; i++ {
		cfg.Nodes = append(cfg.Nodes, &config.Node{Name: fmt.Sprintf("n%d", i), Address: fmt.Sprintf("10.0.0.%d", i+1),
			Labels: map[string]string{"zone": zones[r.Intn(3)], "role": roles[r.Intn(2)]}})
	}
	ns := 1 + r.Intn(4)
	for i := 0; i < ns; i++ {
		s := svc(fmt.Sprintf("s%d", i), []string{"echo:v1", "echo:v2"}[r.Intn(2)], r.Intn(7))
		if r.Intn(2) == 0 {
			pub := 0
			if r.Intn(2) == 0 {
				pub = 8000 + r.Intn(3)
			}
			s.Ports = []config.Port{{Target: 8080, Published: pub, Protocol: "tcp"}}
		}
		if r.Intn(3) == 0 {
			s.Placement.Constraint = expr(t, `node.labels.role == "web"`)
		}
		if r.Intn(2) == 0 {
			s.Placement.Spread = expr(t, "node.labels.zone")
		}
		if r.Intn(3) == 0 {
			s.Placement.MaxPerNode = 1 + r.Intn(3)
		}
		if r.Intn(3) == 0 {
			s.Resources.MemoryBytes = int64(1+r.Intn(4)) << 28
		}
		if r.Intn(3) == 0 {
			s.Resources.NanoCPUs = int64(1+r.Intn(4)) * 25e7
		}
		if r.Intn(4) == 0 {
			s.Update.Order = "stop-first"
		}
		if r.Intn(4) == 0 {
			s.Volumes = []config.Volume{{Source: fmt.Sprintf("data%d", i), Target: "/data"}}
		}
		s.Update.Parallelism = r.Intn(3)
		if r.Intn(4) == 0 {
			s.Env = map[string]config.EnvVar{"A": {Value: fmt.Sprint(r.Intn(2))}, "SECRET": {Value: "hunter2", Sensitive: true}}
		}
		cfg.Services = append(cfg.Services, s)
	}
	// Sometimes a dependency on an earlier service.
	for i := 1; i < len(cfg.Services); i++ {
		if r.Intn(3) == 0 {
			cfg.Services[i].DependsOn = []string{cfg.Services[r.Intn(i)].Name}
		}
	}
	return cfg
}

// randomLive is what an earlier random configuration left, then disturbed.
func randomLive(t testing.TB, r *rand.Rand, cfg *config.Config) *Live {
	live := &Live{Nodes: map[string]*NodeState{}}
	for _, n := range cfg.Nodes {
		live.Nodes[n.Name] = &NodeState{Name: n.Name, Reachable: true,
			Engine: EngineFacts{CPUs: 1 + r.Intn(4), MemoryBytes: int64(1+r.Intn(4)) << 30, OS: "linux", Arch: "x86_64"},
			Images: []Image{{ID: "sha256:1111", Tags: []string{"echo:v1"}}, {ID: "sha256:2222", Tags: []string{"echo:v2"}}}}
	}
	earlier := randomConfig(t, r)
	earlier.Nodes = cfg.Nodes
	if p, d := Make(earlier, live, Options{}); !d.HasErrors() {
		live = Simulate(live, p)
	}
	// In node order, so that a seed always gives the same case.
	for _, name := range sortedNodeNames(live) {
		st := live.Nodes[name]
		for i := range st.Containers {
			switch r.Intn(10) {
			case 0:
				st.Containers[i].State = "exited"
				st.Containers[i].Ports = nil
			case 1:
				st.Containers[i].Labels[LabelSpec] = "{broken"
			}
		}
		if len(st.Containers) > 0 && r.Intn(5) == 0 {
			st.Containers = st.Containers[1:]
		}
		if r.Intn(4) == 0 {
			st.HostPorts = append(st.HostPorts, HostPort{Protocol: "tcp", Port: 8000 + r.Intn(3)})
		}
		if r.Intn(5) == 0 {
			st.Foreign = append(st.Foreign, Container{ID: "f1", Name: "nginx", State: "running",
				Ports: []PortBinding{{HostPort: 8000 + r.Intn(3), ContainerPort: 80, Protocol: "tcp"}}})
		}
		// Another berth project's containers, with reservations (a
		// stopped one reserves nothing).
		for i, k := 0, r.Intn(3); i < k; i++ {
			c := Container{ID: fmt.Sprintf("o%d", i), Name: fmt.Sprintf("other-db-%d", i+1), State: "running",
				Labels:   map[string]string{LabelProject: "other", LabelService: "db"},
				NanoCPUs: int64(r.Intn(5)) * 25e7, MemoryBytes: int64(r.Intn(5)) << 28}
			if r.Intn(4) == 0 {
				c.State = "exited"
			}
			st.Foreign = append(st.Foreign, c)
		}
	}
	if r.Intn(6) == 0 && len(cfg.Nodes) > 1 {
		n := cfg.Nodes[r.Intn(len(cfg.Nodes))].Name
		live.Nodes[n] = &NodeState{Name: n, Reachable: false, Error: "connection refused"}
	}
	return live
}

func TestPlanProperties(t *testing.T) {
	runs, placed := 3000, 0
	if testing.Short() {
		runs = 300
	}
	for seed := 0; seed < runs; seed++ {
		r := rand.New(rand.NewSource(int64(seed)))
		cfg := randomConfig(t, r)
		live := randomLive(t, r, cfg)
		p, diags := Make(cfg, live, Options{})
		if diags.HasErrors() {
			continue
		}
		placed++
		// Determinism.
		p2, _ := Make(cfg, live, Options{})
		a, _ := json.Marshal(p)
		b, _ := json.Marshal(p2)
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: two plans of the same input differ", seed)
		}
		if bytes.Contains(a, []byte("hunter2")) {
			t.Fatalf("seed %d: a sensitive value is in the plan JSON", seed)
		}
		var text bytes.Buffer
		p.WriteText(&text)
		if bytes.Contains(text.Bytes(), []byte("hunter2")) {
			t.Fatalf("seed %d: a sensitive value is in the plan text", seed)
		}
		after := Simulate(live, p)
		checkInvariants(t, seed, cfg, live, after)
		// Convergence.
		p3, d3 := Make(cfg, after, Options{})
		if d3.HasErrors() {
			t.Fatalf("seed %d: replanning after simulate failed: %v", seed, d3)
		}
		if !p3.Empty() {
			var b bytes.Buffer
			p3.WriteText(&b)
			t.Fatalf("seed %d: plan did not converge:\n%s", seed, b.String())
		}
	}
	if placed < runs/4 {
		t.Fatalf("only %d of %d random cases could be placed; the generator is too strict", placed, runs)
	}
	t.Logf("%d of %d random cases placed and checked", placed, runs)
}

// checkInvariants checks the live state a plan leaves (live), made against
// before.
func checkInvariants(t *testing.T, seed int, cfg *config.Config, before, live *Live) {
	t.Helper()
	count := map[string]int{}
	for _, n := range cfg.Nodes {
		st := live.Nodes[n.Name]
		if !st.Reachable {
			continue
		}
		// Ports held by host processes before the plan: bound on the node,
		// but by no container.
		hostProc := map[string]bool{}
		if bst := before.Nodes[n.Name]; bst != nil && bst.Reachable {
			bound := map[string]bool{}
			for _, cs := range [][]Container{bst.Containers, bst.Foreign} {
				for _, c := range cs {
					for _, b := range c.Ports {
						bound[fmt.Sprintf("%s/%d", b.Protocol, b.HostPort)] = true
					}
				}
			}
			for _, hp := range bst.HostPorts {
				if k := fmt.Sprintf("%s/%d", hp.Protocol, hp.Port); !bound[k] {
					hostProc[k] = true
				}
			}
		}
		perSvc := map[string]int{}
		ports := map[string]string{}
		var cpu, mem int64
		for _, c := range st.Containers {
			s := cfg.Service(c.Labels[LabelService])
			if s == nil {
				t.Fatalf("seed %d: container %s of unknown service left on %s", seed, c.Name, n.Name)
			}
			if c.State != "running" {
				t.Fatalf("seed %d: container %s on %s is %s after apply", seed, c.Name, n.Name, c.State)
			}
			count[s.Name]++
			perSvc[s.Name]++
			cpu += c.NanoCPUs
			mem += c.MemoryBytes
			if s.Placement.Constraint != nil {
				v, _ := s.Placement.Constraint.Value(config.PlacementContext(config.NodeValue(config.NodeInfo{Name: n.Name, Labels: n.Labels})))
				if !v.True() {
					t.Fatalf("seed %d: %s runs on %s against its constraint", seed, c.Name, n.Name)
				}
			}
			for _, b := range c.Ports {
				k := fmt.Sprintf("%s/%d", b.Protocol, b.HostPort)
				if hostProc[k] {
					t.Fatalf("seed %d: %s publishes port %s, which a host process holds on %s", seed, c.Name, k, n.Name)
				}
				if other, ok := ports[k]; ok {
					t.Fatalf("seed %d: port %s published twice on %s (%s and %s)", seed, k, n.Name, other, c.Name)
				}
				ports[k] = c.Name
			}
		}
		// Other berth projects' running containers hold their reservations
		// too: where this project reserves CPU (memory), the node's CPU
		// (memory) must cover both. (Others alone may oversubscribe a node;
		// then nothing of this project that reserves it is placed there.)
		var otherCPU, otherMem int64
		for _, f := range st.Foreign {
			if f.Labels[LabelProject] != "" && f.Labels[LabelProject] != cfg.Project.Name && f.Running() {
				otherCPU += f.NanoCPUs
				otherMem += f.MemoryBytes
			}
			for _, b := range f.Ports {
				if c, ok := ports[fmt.Sprintf("%s/%d", b.Protocol, b.HostPort)]; ok {
					t.Fatalf("seed %d: %s publishes a port foreign container %s holds on %s", seed, c, f.Name, n.Name)
				}
			}
		}
		for s, k := range perSvc {
			if m := cfg.Service(s).Placement.MaxPerNode; m > 0 && k > m {
				t.Fatalf("seed %d: %d replicas of %s on %s, max_per_node %d", seed, k, s, n.Name, m)
			}
		}
		if cpu > int64(st.Engine.CPUs)*1e9 || mem > st.Engine.MemoryBytes {
			t.Fatalf("seed %d: reservations exceed node %s", seed, n.Name)
		}
		if (cpu > 0 && cpu+otherCPU > int64(st.Engine.CPUs)*1e9) || (mem > 0 && mem+otherMem > st.Engine.MemoryBytes) {
			t.Fatalf("seed %d: reservations (%d+%d nano CPUs, %d+%d bytes with other projects') exceed node %s",
				seed, cpu, otherCPU, mem, otherMem, n.Name)
		}
	}
	for _, s := range cfg.Services {
		// Replicas that may run on an unreachable node are left alone,
		// never created elsewhere: fewer may be seen, never more.
		// But an unreachable node holds no more of them than one node can
		// (a published port: one; max_per_node): the rest are created.
		if hidden := hiddenNodes(cfg, live, s); hidden > 0 {
			if count[s.Name] > s.Replicas {
				t.Fatalf("seed %d: service %s has %d replicas on the reachable nodes, want at most %d", seed, s.Name, count[s.Name], s.Replicas)
			}
			bound := -1
			if len(s.Ports) > 0 {
				bound = 1
			}
			if m := s.Placement.MaxPerNode; m > 0 && (bound < 0 || m < bound) {
				bound = m
			}
			if least := s.Replicas - bound*hidden; bound >= 0 && count[s.Name] < least {
				t.Fatalf("seed %d: service %s has %d replicas on the reachable nodes; %d unreachable nodes hold at most %d each, so want at least %d",
					seed, s.Name, count[s.Name], hidden, bound, least)
			}
			continue
		}
		if count[s.Name] != s.Replicas {
			t.Fatalf("seed %d: service %s has %d replicas, want %d", seed, s.Name, count[s.Name], s.Replicas)
		}
	}
}

// hiddenNodes counts the unreachable nodes that may run replicas of s:
// their constraint is not false on what is known of the node without its
// engine.
func hiddenNodes(cfg *config.Config, live *Live, s *config.Service) int {
	k := 0
	for _, n := range cfg.Nodes {
		if st := live.Nodes[n.Name]; st != nil && st.Reachable {
			continue
		}
		if s.Placement.Constraint == nil {
			k++
			continue
		}
		attrs := config.NodeValue(config.NodeInfo{Name: n.Name, Address: n.Address, Labels: n.Labels}).AsValueMap()
		attrs["cpus"], attrs["memory"] = cty.UnknownVal(cty.Number), cty.UnknownVal(cty.Number)
		attrs["arch"], attrs["os"] = cty.UnknownVal(cty.String), cty.UnknownVal(cty.String)
		v, diags := s.Placement.Constraint.Value(config.PlacementContext(cty.ObjectVal(attrs)))
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() || !v.Type().Equals(cty.Bool) || v.True() {
			k++
		}
	}
	return k
}
