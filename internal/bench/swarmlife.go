package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// ----------------------------------------------------------- berth-swarm

// berthSwarmLife is berth with the Swarm target (project swarm { managers
// = ["node1"] }) on the same single-node swarm the stack gets (node1's
// engine, swarm init before its turn, leave after): the same 30 replicas,
// health check and update_config as the stack, timed until berth's apply
// returns, which is once every task runs the image healthy for the monitor
// window.
type berthSwarmLife struct {
	b       *bench
	sw      *stackLife // the swarm's enter and exit, as the stack's
	dir     string
	project string
}

func (t *berthSwarmLife) name() string { return "berth-swarm" }

func (t *berthSwarmLife) hcl(image string) string {
	return fmt.Sprintf(`project %q {
  swarm {
    managers = [%q]
  }
}

service "echo" {
  image    = %q
  replicas = %d

  health {
    cmd          = ["/echo", "check"]
    interval     = "1s"
    timeout      = "10s"
    retries      = 3
    start_period = "60s"
  }

  update {
    parallelism = %d
    order       = "start-first"
    monitor     = %q
  }
}
`, t.project, t.b.cluster.Nodes[0].Name, image, lifeReplicas, t.b.opts.parallelism, t.b.opts.monitor)
}

func (t *berthSwarmLife) setup(ctx context.Context) error {
	t.sw = &stackLife{b: t.b}
	if err := t.sw.setup(ctx); err != nil {
		return err
	}
	t.project = "bench-" + t.b.id + "-swarm"
	var err error
	t.dir, _, err = t.b.berthProject("swarm", t.hcl(imageV1))
	return err
}

func (t *berthSwarmLife) enter(ctx context.Context) error { return t.sw.enter(ctx) }
func (t *berthSwarmLife) exit(ctx context.Context) error  { return t.sw.leave(ctx) }

func (t *berthSwarmLife) reset(ctx context.Context) error {
	svcs, err := t.sw.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "berth.project="+t.project))})
	if err == nil && len(svcs) > 0 {
		r := t.b.exec(ctx, cmdSpec{name: t.b.berth, args: []string{"destroy", "-auto-approve", "-lock-timeout", "60s", t.dir}, timeout: 3 * time.Minute, log: filepath.Join(t.b.tmp, "berth-swarm.log")})
		if r.err != nil {
			logf("berth destroy %s: %s", t.project, r.failure())
		}
	}
	return t.b.removeLabelled(ctx, "berth.project="+t.project)
}

func (t *berthSwarmLife) deploy(ctx context.Context, image string, update bool) (map[string]float64, error) {
	if err := writeFile(t.dir, "main.hcl", t.hcl(image)); err != nil {
		return nil, err
	}
	r := t.b.exec(ctx, cmdSpec{name: t.b.berth, args: []string{"apply", "-auto-approve", t.dir}, timeout: 5 * time.Minute, log: filepath.Join(t.b.tmp, "berth-swarm.log")})
	if r.err != nil {
		return nil, errors.New(r.failure())
	}
	tasks, err := t.sw.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", t.project+"-echo"), filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, err
	}
	img, err := t.sw.cli.ImageInspect(ctx, image)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, k := range tasks {
		if k.Status.State == swarm.TaskStateRunning && k.Spec.ContainerSpec != nil && k.Spec.ContainerSpec.Image == img.ID {
			n++
		}
	}
	if n != lifeReplicas {
		return nil, fmt.Errorf("after apply %d of %d tasks run %s", n, lifeReplicas, image)
	}
	id := "deploy/berth-swarm"
	if update {
		id = "update/berth-swarm"
	}
	return map[string]float64{id: r.dur.Seconds()}, nil
}

func (t *berthSwarmLife) remove(ctx context.Context) (map[string]float64, error) {
	t0 := time.Now()
	r := t.b.exec(ctx, cmdSpec{name: t.b.berth, args: []string{"destroy", "-auto-approve", t.dir}, timeout: 5 * time.Minute, log: filepath.Join(t.b.tmp, "berth-swarm.log")})
	if r.err != nil {
		return nil, errors.New(r.failure())
	}
	// destroy returns once Swarm has no task of the services left; the
	// engine removes the tasks' containers a moment later: timed until
	// they are gone, as the stack's removal is.
	n := 0
	err := poll(ctx, 100*time.Millisecond, 3*time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		n, err = t.b.countLabelled(ctx, "berth.project="+t.project, false)
		return err == nil && n == 0, err
	})
	if err != nil {
		return nil, fmt.Errorf("after destroy: %d containers left (%v)", n, err)
	}
	return map[string]float64{"remove/berth-swarm": time.Since(t0).Seconds()}, nil
}
