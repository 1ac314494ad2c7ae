package planner

import (
	"fmt"
	"testing"

	"github.com/berth-dev/berth/config"
)

// benchInput is n nodes over three zones and ten services whose replicas
// add up to 10 per node, spread over zones, with resources and a published
// auto-assigned port on half of them.
func benchInput(b *testing.B, n int) (*config.Config, *Live) {
	cfg := &config.Config{Project: config.Project{Name: "bench"}}
	live := &Live{Nodes: map[string]*NodeState{}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node%05d", i)
		cfg.Nodes = append(cfg.Nodes, &config.Node{Name: name, Address: "10.0.0.1",
			Labels: map[string]string{"zone": string(rune('a' + i%3)), "role": "web"}})
		live.Nodes[name] = &NodeState{Name: name, Reachable: true,
			Engine: EngineFacts{CPUs: 16, MemoryBytes: 64 << 30, OS: "linux", Arch: "x86_64"},
			Images: []Image{{ID: "sha256:1111", Tags: []string{"echo:v1"}}, {ID: "sha256:2222", Tags: []string{"echo:v2"}}}}
	}
	for s := 0; s < 10; s++ {
		sv := svc(fmt.Sprintf("svc%d", s), "echo:v1", n)
		sv.Placement.Spread = expr(b, "node.labels.zone")
		sv.Placement.Constraint = expr(b, `node.labels.role == "web"`)
		sv.Resources.MemoryBytes = 256 << 20
		sv.Env = map[string]config.EnvVar{"A": {Value: "1"}, "B": {Value: "2"}}
		if s%2 == 0 {
			sv.Ports = []config.Port{{Target: 8080, Protocol: "tcp"}}
		}
		cfg.Services = append(cfg.Services, sv)
	}
	return cfg, live
}

// BenchmarkPlanFirstDeploy plans 10 replicas per node onto empty nodes.
func BenchmarkPlanFirstDeploy(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d/replicas=%d", n, 10*n), func(b *testing.B) {
			cfg, live := benchInput(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, d := Make(cfg, live, Options{}); d.HasErrors() {
					b.Fatal(d)
				}
			}
		})
	}
}

// BenchmarkPlanNoop plans against a cluster that already matches, the
// common case of plan in CI.
func BenchmarkPlanNoop(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d/replicas=%d", n, 10*n), func(b *testing.B) {
			cfg, live := benchInput(b, n)
			p, _ := Make(cfg, live, Options{})
			live = Simulate(live, p)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p, d := Make(cfg, live, Options{})
				if d.HasErrors() || !p.Empty() {
					b.Fatal("not a no-op")
				}
			}
		})
	}
}
