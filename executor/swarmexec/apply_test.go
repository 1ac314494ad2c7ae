package swarmexec

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

func TestCount(t *testing.T) {
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	task := func(desired, state swarm.TaskState, image string, at time.Time, err string) swarm.Task {
		return swarm.Task{DesiredState: desired, Slot: 1, Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
			Status: swarm.TaskStatus{State: state, Timestamp: at, Err: err}}
	}
	tasks := []swarm.Task{
		task(swarm.TaskStateRunning, swarm.TaskStateRunning, "new", start, ""),
		task(swarm.TaskStateRunning, swarm.TaskStateRunning, "old", start, ""),
		task(swarm.TaskStateRunning, swarm.TaskStateStarting, "new", start, ""),
		task(swarm.TaskStateShutdown, swarm.TaskStateFailed, "new", start.Add(time.Second), "unhealthy container"),
		task(swarm.TaskStateShutdown, swarm.TaskStateFailed, "old", start.Add(-time.Hour), "an older failure"),
	}
	running, other, failed, why := count(tasks, "new", start)
	if running != 1 || other != 2 || failed != 1 || !strings.Contains(why, "unhealthy container") {
		t.Errorf("count = %d running, %d other, %d failed, %q", running, other, failed, why)
	}
}
