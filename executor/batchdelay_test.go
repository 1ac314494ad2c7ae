package executor

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
)

// Services that share batches keep their own update.delay between their
// own batches only: a delay holds the next batch when the service goes on
// in it, and a service that is done (or only creates) holds up nobody.
func TestBatchDelayIsPerService(t *testing.T) {
	act := func(service string, kind planner.ActionKind, delay time.Duration) *planner.Action {
		return &planner.Action{Service: service, Kind: kind, Spec: &planner.ContainerSpec{Update: planner.UpdatePolicy{DelayMillis: delay.Milliseconds()}}}
	}
	batches := [][]*planner.Action{
		{act("slow", planner.Replace, 3*time.Second), act("fast", planner.Replace, 0), act("new", planner.Create, 9*time.Second)},
		{act("slow", planner.Replace, 3*time.Second), act("fast", planner.Replace, 0), act("new", planner.Create, 9*time.Second)},
		{act("fast", planner.Replace, 0), act("other", planner.Replace, time.Second)},
		{act("fast", planner.Replace, 0)},
	}
	for bi, want := range []time.Duration{3 * time.Second, 0, 0, 0} {
		if got := batchDelay(batches, bi); got != want {
			t.Errorf("after batch %d: delay %v, want %v", bi+1, got, want)
		}
	}
}
