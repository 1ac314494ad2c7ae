package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// lifeReplicas is the replica count of the deploy/update/remove items: 10
// per node for berth, all on node1 for compose and the stack.
const lifeReplicas = 30

const (
	imageV1 = "berth-test/echo:v1"
	imageV2 = "berth-test/echo:v2"
)

// berthHCL is the berth service of the noop and lifecycle items: no
// published port (10 per node cannot share one), berth's TCP probe on the
// container port through the node's SSH connection, every 1 s.
func (b *bench) berthHCL(image string) string {
	return fmt.Sprintf(`service "echo" {
  image    = %q
  replicas = %d

  health {
    tcp      = true
    port     = 8080
    interval = "1s"
  }

  update {
    parallelism = %d
    order       = "start-first"
    monitor     = %q
  }
}
`, image, lifeReplicas, b.opts.parallelism, b.opts.monitor)
}

// berthProject makes a berth configuration directory (its base name is the
// project name) holding the cluster's nodes.hcl and main.hcl, and registers
// its destruction.
func (b *bench) berthProject(suffix, main string) (dir, project string, err error) {
	project = "bench-" + b.id + "-" + suffix
	dir = filepath.Join(b.tmp, project)
	nodes, err := os.ReadFile(filepath.Join(b.cluster.Dir, "nodes.hcl"))
	if err != nil {
		return "", "", err
	}
	if err := writeFile(dir, "nodes.hcl", string(nodes)); err != nil {
		return "", "", err
	}
	if err := writeFile(dir, "main.hcl", main); err != nil {
		return "", "", err
	}
	b.atCleanup("destroy berth project "+project, func(ctx context.Context) error {
		if err := b.resetBerth(ctx, dir, project); err != nil {
			return err
		}
		// destroy keeps the project's volumes: its audit records and data
		// volumes (an ingress proxy's <project>-ingress among them).
		return b.removeLabelledVolumes(ctx, "berth.project="+project)
	})
	return dir, project, nil
}

// resetBerth destroys the project with berth, then removes whatever still
// carries its label on any node (an interrupted apply's renamed-aside
// containers, say).
func (b *bench) resetBerth(ctx context.Context, dir, project string) error {
	n, err := b.countLabelled(ctx, "berth.project="+project, false)
	if err == nil && n == 0 {
		return nil
	}
	r := b.exec(ctx, cmdSpec{name: b.berth, args: []string{"destroy", "-auto-approve", "-lock-timeout", "60s", dir},
		timeout: 3 * time.Minute, log: filepath.Join(b.tmp, "berth.log")})
	if r.err != nil {
		logf("berth destroy %s: %s (removing its containers directly)", project, r.failure())
	}
	return b.removeLabelled(ctx, "berth.project="+project)
}

// countLabelled counts the containers with label on all nodes (running
// only, or all).
func (b *bench) countLabelled(ctx context.Context, label string, runningOnly bool) (int, error) {
	total := 0
	for _, n := range b.cluster.Nodes {
		f := filters.NewArgs(filters.Arg("label", label))
		if runningOnly {
			f.Add("status", "running")
		}
		cs, err := b.engines[n.Name].ContainerList(ctx, container.ListOptions{All: !runningOnly, Filters: f})
		if err != nil {
			return 0, fmt.Errorf("%s: %w", n.Name, err)
		}
		total += len(cs)
	}
	return total, nil
}

// perNode counts the running containers with label on each node.
func (b *bench) perNode(ctx context.Context, label string) (map[string]int, error) {
	m := map[string]int{}
	for _, n := range b.cluster.Nodes {
		cs, err := b.engines[n.Name].ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", label), filters.Arg("status", "running"))})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		m[n.Name] = len(cs)
	}
	return m, nil
}

// removeLabelledVolumes removes every volume with label on every node.
func (b *bench) removeLabelledVolumes(ctx context.Context, label string) error {
	var errs []string
	for _, n := range b.cluster.Nodes {
		cli := b.engines[n.Name]
		vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label))})
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		for _, v := range vs.Volumes {
			if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !client.IsErrNotFound(err) {
				errs = append(errs, fmt.Sprintf("%s: remove volume %s: %v", n.Name, v.Name, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removeLabelled force-removes every container with label on every node.
func (b *bench) removeLabelled(ctx context.Context, label string) error {
	var errs []string
	for _, n := range b.cluster.Nodes {
		cli := b.engines[n.Name]
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		for _, c := range cs {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				errs = append(errs, fmt.Sprintf("%s: remove %s: %v", n.Name, c.ID[:12], err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// noop is item 1: a no-op berth plan over the three nodes (with the 30
// replicas of the lifecycle item deployed) against the OpenSSH client's
// least work and the Docker CLI's ssh:// transport.
func (b *bench) noop() error {
	sec := b.section("noop", "1. No-op plan over 3 nodes (30 replicas deployed) vs OpenSSH and the Docker CLI's ssh://")
	dir, project, err := b.berthProject("noop", b.berthHCL(imageV1))
	if err != nil {
		return err
	}
	logf("noop: deploying %d replicas with berth (not timed)", lifeReplicas)
	r := b.exec(b.ctx, cmdSpec{name: b.berth, args: []string{"apply", "-auto-approve", dir}, timeout: 5 * time.Minute, log: filepath.Join(b.tmp, "berth.log")})
	if r.err != nil {
		return fmt.Errorf("berth apply: %s", r.failure())
	}
	berthS := sec.series("noop/berth", "berth plan (3 nodes, one SSH connection each)", "berth", "s", "")
	sshS := sec.series("noop/ssh", "ssh node1 true (OpenSSH, fresh connection)", "openssh", "s", "noop/berth")
	dockS := sec.series("noop/docker-ssh", "docker -H ssh://nodeN ps, node1..3 in turn", "docker-cli", "s", "noop/berth")
	sec.note("ssh: %s", strings.Join(b.cluster.SSHArgs("node1", "true"), " "))
	sec.note("docker -H ssh:// has no flag or variable for ssh options (docker/cli#1463, #6088) and OpenSSH reads ~/.ssh/config from the passwd entry, not $HOME: the bench puts an 'ssh' wrapper first in PATH that adds -F with the cluster's key and known_hosts (IdentitiesOnly, StrictHostKeyChecking yes, BatchMode)")
	sec.note("docker -H ssh:// runs 'ssh ... docker system dial-stdio' per invocation: a new SSH connection and a docker CLI process on the node each time")
	sec.note("every remote command runs through root's login shell (each node has its own /root with Debian's stock .bashrc): 'ssh true' and each dial-stdio pay it once; berth's plan pays it only when a service publishes a port (one read of /proc/net per node), and this project publishes none")
	rounds := b.opts.rounds
	env := []string{"PATH=" + b.sshWrap + ":" + os.Getenv("PATH")}
	for round := 0; round <= rounds && b.ctx.Err() == nil; round++ {
		warm := round == 0
		r := b.exec(b.ctx, cmdSpec{name: b.berth, args: []string{"plan", "-detailed-exitcode", dir}, timeout: time.Minute, log: filepath.Join(b.tmp, "berth.log")})
		switch {
		case r.err != nil && r.code == 2:
			berthS.fail(warm, round, "plan is not a no-op: "+lastLines(r.out, 2))
		case r.err != nil:
			berthS.fail(warm, round, r.failure())
		default:
			berthS.add(warm, r.dur.Seconds())
		}
		r = b.exec(b.ctx, cmdSpec{name: "ssh", args: b.cluster.SSHArgs("node1", "true"), timeout: time.Minute})
		if r.err != nil {
			sshS.fail(warm, round, r.failure())
		} else {
			sshS.add(warm, r.dur.Seconds())
		}
		var sum time.Duration
		var ferr string
		for _, n := range b.cluster.Nodes {
			r := b.exec(b.ctx, cmdSpec{name: "docker", args: []string{"-H", "ssh://" + b.cluster.User + "@" + n.Addr, "ps"}, env: env, timeout: time.Minute})
			if r.err != nil {
				ferr = n.Name + ": " + r.failure()
				break
			}
			sum += r.dur
		}
		if ferr != "" {
			dockS.fail(warm, round, ferr)
		} else {
			dockS.add(warm, sum.Seconds())
		}
	}
	if b.opts.trace && b.ctx.Err() == nil {
		logf("noop: tracing berth plan")
		b.traceNote(sec, dir, 2*b.opts.rounds+1, 10)
	}
	logf("noop: destroying the project (not timed)")
	return b.resetBerth(context.WithoutCancel(b.ctx), dir, project)
}
