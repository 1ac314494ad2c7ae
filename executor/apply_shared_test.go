package executor

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/config"
)

// Independent services share batches; a failure of one still rolls back
// the whole apply, the other service's replicas in the same batch too.
func TestApplyIndependentServicesShareBatchAndRollBackTogether(t *testing.T) {
	fc := newFakeCluster(t)
	two := func(a, b string) *config.Config {
		return loadHCL(t, `
service "api" {
  image    = "`+a+`"
  replicas = 2
`+fastUpdate+`}
service "web" {
  image    = "`+b+`"
  replicas = 2
`+fastUpdate+`}
`)
	}
	p, _, err := fc.apply(context.Background(), two("echo:v1", "echo:v1"), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.Actions {
		if a.Batch != 1 {
			t.Fatalf("%s.%d in batch %d: independent services' creates go together in batch 1", a.Service, a.Replica, a.Batch)
		}
	}
	before := fc.running()
	p, _, err = fc.apply(context.Background(), two("echo:v2", "echo:broken"), ApplyOptions{})
	if err == nil {
		t.Fatal("apply of a broken service succeeded")
	}
	services := map[int]map[string]bool{}
	for _, a := range p.Actions {
		if services[a.Batch] == nil {
			services[a.Batch] = map[string]bool{}
		}
		services[a.Batch][a.Service] = true
	}
	if !services[1]["api"] || !services[1]["web"] {
		t.Fatalf("batch 1 holds %v, want api and web", services[1])
	}
	if after := fc.running(); !equalRunning(before, after) {
		t.Fatalf("not rolled back:\nbefore %v\nafter  %v", before, after)
	}
}
