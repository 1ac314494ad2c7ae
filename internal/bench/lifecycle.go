package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// A lifeTool deploys the 30 replicas from nothing, updates them to v2 and
// removes them, the way its users do. Each step returns its samples by
// series id.
type lifeTool interface {
	name() string
	setup(ctx context.Context) error
	// enter and exit run (untimed) around the tool's turn in each round.
	enter(ctx context.Context) error
	exit(ctx context.Context) error
	deploy(ctx context.Context, image string, update bool) (map[string]float64, error)
	remove(ctx context.Context) (map[string]float64, error)
	reset(ctx context.Context) error // untimed: nothing of the tool's left
}

// lifecycle is items 2 and 3: per round and tool (interleaved), deploy v1
// from nothing, update to v2, remove.
func (b *bench) lifecycle() error {
	mon := b.opts.monitor
	dep := b.section("deploy", fmt.Sprintf("2. Deploy %d replicas of %s from nothing, health-checked (berth: 10 per node on 3 nodes; peers: all on node1's engine)", lifeReplicas, imageV1))
	rem := b.section("remove", fmt.Sprintf("2b. Removal of the %d replicas", lifeReplicas))
	upd := b.section("update", fmt.Sprintf("3. Rolling update of the %d replicas %s -> v2 (parallelism %d, start-first, monitor %s)", lifeReplicas, imageV1, b.opts.parallelism, mon))

	dep.series("deploy/berth", "berth apply -auto-approve (3 nodes)", "berth", "s", "")
	dep.series("deploy/compose", "docker-compose up -d (node1, unix socket; returns unverified)", "compose", "s", "deploy/berth")
	dep.series("deploy/compose-healthy", "  … until all 30 healthy", "compose", "s", "deploy/berth")
	dep.series("deploy/stack", "docker stack deploy, until 30 tasks running (healthy)", "stack", "s", "deploy/berth")
	upd.series("update/berth", "berth apply -auto-approve (3 nodes)", "berth", "s", "")
	upd.series("update/compose", "docker-compose up -d (recreates all at once; unverified)", "compose", "s", "update/berth")
	upd.series("update/compose-healthy", "  … until all 30 v2 healthy", "compose", "s", "update/berth")
	upd.series("update/stack", "docker stack deploy, until 30 v2 tasks running", "stack", "s", "update/berth")
	rem.series("remove/berth", "berth destroy -auto-approve", "berth", "s", "")
	dep.series("deploy/berth-swarm", "berth apply, Swarm target (node1's swarm), until converged", "berth", "s", "")
	upd.series("update/berth-swarm", "berth apply, Swarm target (node1's swarm), until converged", "berth", "s", "")
	rem.series("remove/berth-swarm", "berth destroy, Swarm target, until its containers are gone", "berth", "s", "")
	rem.series("remove/compose", "docker-compose down", "compose", "s", "remove/berth")
	rem.series("remove/stack", "docker stack rm, until its containers are gone", "stack", "s", "remove/berth")
	if b.opts.composeSSH > 0 {
		lim := b.opts.composeSSH
		dep.series("deploy/compose-ssh", fmt.Sprintf("docker-compose up -d over ssh:// (COMPOSE_PARALLEL_LIMIT=%d)", lim), "compose", "s", "deploy/berth")
		upd.series("update/compose-ssh", fmt.Sprintf("docker-compose up -d over ssh:// (COMPOSE_PARALLEL_LIMIT=%d)", lim), "compose", "s", "update/berth")
		rem.series("remove/compose-ssh", fmt.Sprintf("docker-compose down over ssh:// (COMPOSE_PARALLEL_LIMIT=%d)", lim), "compose", "s", "remove/berth")
	}
	dep.note("berth's health check: a TCP connect to the container's port 8080 through the node's SSH connection, every 1 s; update.monitor %s (berth's default is 5s; -monitor changes it). Every replica counts as started only when healthy for the monitor period, so berth's times include health and the last monitor window", mon)
	dep.note("compose and the stack: HEALTHCHECK [\"CMD\", \"/echo\", \"check\"] every 1 s, timeout 10 s, start_period 60 s. Each check is an exec in the container (runc): 30-60 containers checked every second load this 2-CPU machine heavily, and with a 2 s timeout swarm killed 'unhealthy' tasks under load and never converged, hence the lenient timeout. Compose v1 does not wait for health: 'until healthy' polls the engine")
	dep.note("the stack: a single-node swarm on node1's engine (docker swarm init --advertise-addr node1 before the stack's turn in each round, swarm leave --force after it), the image by ID (sha256:...) with --resolve-image never (no registry), no published ports and the ingress network removed (this kernel has no IPVS for the routing mesh), tasks on a swarm-scoped bridge network %s (no overlay, no docker_gwbridge); tasks count as running only once healthy", b.stackName()+"net")
	upd.note("berth and the stack: update parallelism %d, order start-first, monitor %s (same update_config); compose v1 has no rolling update: up -d stops and recreates every changed container at once", b.opts.parallelism, mon)
	rem.note("berth destroy removes the project's containers on the three nodes; stack rm returns at once, so it is timed until the stack's containers are gone")
	dep.note("compose runs with network_mode: bridge, the network berth's containers use: with a project network, Docker 20.10 now and then leaks that network's endpoint count when compose down removes 30 containers at once, and the network can no longer be removed ('has active endpoints') until the engine's data is reset")

	tools := []lifeTool{
		&berthLife{b: b},
		&composeLife{b: b, id: "compose", project: "benchc" + b.id},
		&stackLife{b: b},
		&berthSwarmLife{b: b},
	}
	if b.opts.composeSSH > 0 {
		tools = append(tools, &composeLife{b: b, id: "compose-ssh", project: "benchs" + b.id, ssh: true, limit: b.opts.composeSSH})
	}
	// The stack's and berth-swarm's turns put node1 into swarm mode.
	release, err := b.exclusive(10 * time.Minute)
	if err != nil {
		return fmt.Errorf("the test cluster alone: %w", err)
	}
	defer release()
	var active []lifeTool
	for _, t := range tools {
		if b.opts.lifeTools != nil && !b.opts.lifeTools[t.name()] {
			continue
		}
		if err := t.setup(b.ctx); err != nil {
			logf("lifecycle: %s: %v (left out)", t.name(), err)
			dep.note("%s left out: %v", t.name(), err)
			continue
		}
		active = append(active, t)
	}
	record := func(sec *Section, warm bool, round int, id string, samples map[string]float64, err error) {
		for k, v := range samples {
			if x := b.findSeries(k); x != nil {
				x.add(warm, v)
			}
		}
		if err != nil {
			if x := b.findSeries(id); x != nil {
				x.fail(warm, round, err.Error())
			}
		}
	}
	for round := 0; round <= b.opts.rounds && b.ctx.Err() == nil; round++ {
		warm := round == 0
		for _, t := range active {
			if b.ctx.Err() != nil {
				break
			}
			t0 := time.Now()
			if err := t.enter(b.ctx); err != nil {
				return fmt.Errorf("%s: %w", t.name(), err)
			}
			if err := t.reset(b.ctx); err != nil {
				return fmt.Errorf("%s: clearing before the round: %w", t.name(), err)
			}
			s, err := t.deploy(b.ctx, imageV1, false)
			record(dep, warm, round, "deploy/"+t.name(), s, err)
			if err == nil && !warm {
				// The warm-up round deploys and removes only: the
				// update's images are already warm, and this keeps the
				// whole command within its 10-minute budget.
				s, err = t.deploy(b.ctx, imageV2, true)
				record(upd, warm, round, "update/"+t.name(), s, err)
			}
			if err == nil {
				s, err = t.remove(b.ctx)
				record(rem, warm, round, "remove/"+t.name(), s, err)
			}
			if err != nil {
				logf("lifecycle: %s: %v", t.name(), err)
				if rerr := t.reset(context.WithoutCancel(b.ctx)); rerr != nil {
					return fmt.Errorf("%s: clearing after a failure: %w", t.name(), rerr)
				}
			}
			if err := t.exit(context.WithoutCancel(b.ctx)); err != nil {
				return fmt.Errorf("%s: %w", t.name(), err)
			}
			logf("lifecycle: round %d/%d %s done in %.1f s", round, b.opts.rounds, t.name(), time.Since(t0).Seconds())
		}
	}
	for _, t := range active {
		if st, ok := t.(*stackLife); ok && len(st.swarmInit) > 0 {
			dep.note("swarm init (node1) before and swarm leave --force after the stack's turn in every round, not timed: init median %.2f s, leave (with docker_gwbridge removal) median %.2f s", median(st.swarmInit), median(st.swarmLeave))
		}
	}
	for _, sec := range []*Section{dep, upd, rem} {
		var sw, st *Series
		for _, x := range sec.Series {
			switch x.ID {
			case sec.ID + "/berth-swarm":
				sw = x
			case sec.ID + "/stack":
				st = x
			}
		}
		if sw != nil && st != nil && len(sw.Samples) > 0 && len(st.Samples) > 0 {
			sec.note("berth with the Swarm target over docker stack deploy (medians, same swarm, replicas, health check and update_config): %.2f (%.2f s / %.2f s)",
				median(sw.Samples)/median(st.Samples), median(sw.Samples), median(st.Samples))
		}
	}
	if b.opts.composeSSH == 0 && b.ctx.Err() == nil && (b.opts.lifeTools == nil || b.opts.lifeTools["compose"]) {
		b.composeSSHProbe(dep)
	}
	return nil
}

func (b *bench) findSeries(id string) *Series {
	for _, s := range b.report.Sections {
		for _, x := range s.Series {
			if x.ID == id {
				return x
			}
		}
	}
	return nil
}

// composeSSHProbe makes one attempt at the deploy with docker-compose over
// ssh:// and compose's defaults, to show whether it works at all.
func (b *bench) composeSSHProbe(dep *Section) {
	c := &composeLife{b: b, id: "compose-ssh", project: "benchs" + b.id, ssh: true, timeout: 2 * time.Minute}
	x := dep.series("deploy/compose-ssh-once", "docker-compose up -d over ssh:// (compose defaults; one attempt)", "compose", "s", "deploy/berth")
	if err := c.setup(b.ctx); err != nil {
		x.Note = "not run: " + err.Error()
		return
	}
	logf("lifecycle: one attempt with docker-compose over ssh://")
	s, err := c.deploy(b.ctx, imageV1, false)
	if err != nil {
		x.Failures = append(x.Failures, "attempt: "+oneLine(err.Error()))
	} else {
		x.add(false, s["deploy/compose-ssh"])
	}
	dep.note("docker-compose over ssh:// (DOCKER_HOST=ssh://root@node1): compose %s shells out to OpenSSH per API connection ('ssh ... docker system dial-stdio', the default since 1.28 unless COMPOSE_PARAMIKO_SSH=1), yet docker-py's ssh module imports paramiko first, which is not installed here (Debian's python3-paramiko; python3-docker does not depend on it): without it compose fails with 'Install paramiko package to enable ssh:// support'. The bench puts an empty 'paramiko' module on PYTHONPATH for compose only (never used when shelling out) and the ssh wrapper in PATH", b.report.Versions["docker_compose"])
	dep.note("with compose's default parallelism (COMPOSE_PARALLEL_LIMIT 64) its 30 parallel creates open ~30 SSH connections at once and sshd's MaxStartups 10:30:100 drops some ('kex_exchange_identification: Connection closed by remote host'); compose then dies (SIGPIPE) or fails: the known compose issue. With COMPOSE_PARALLEL_LIMIT=8 it works but every API connection is a new SSH connection and a docker CLI on the node: ~60 s for the deploy here, too slow for the rounds; -compose-ssh 8 adds it")
	if err := c.reset(context.WithoutCancel(b.ctx)); err != nil {
		logf("lifecycle: compose-ssh reset: %v", err)
	}
}

// ---------------------------------------------------------------- berth

type berthLife struct {
	b       *bench
	dir     string
	project string
}

func (t *berthLife) name() string                    { return "berth" }
func (t *berthLife) enter(ctx context.Context) error { return nil }
func (t *berthLife) exit(ctx context.Context) error  { return nil }

func (t *berthLife) setup(ctx context.Context) error {
	var err error
	t.dir, t.project, err = t.b.berthProject("life", t.b.berthHCL(imageV1))
	return err
}

func (t *berthLife) reset(ctx context.Context) error { return t.b.resetBerth(ctx, t.dir, t.project) }

func (t *berthLife) deploy(ctx context.Context, image string, update bool) (map[string]float64, error) {
	if err := writeFile(t.dir, "main.hcl", t.b.berthHCL(image)); err != nil {
		return nil, err
	}
	r := t.b.exec(ctx, cmdSpec{name: t.b.berth, args: []string{"apply", "-auto-approve", t.dir}, timeout: 5 * time.Minute, log: filepath.Join(t.b.tmp, "berth.log")})
	if r.err != nil {
		return nil, errors.New(r.failure())
	}
	id := "deploy/berth"
	if update {
		id = "update/berth"
	}
	m, err := t.b.perNode(ctx, "berth.project="+t.project)
	if err != nil {
		return nil, err
	}
	for n, c := range m {
		if c != lifeReplicas/len(t.b.cluster.Nodes) {
			return nil, fmt.Errorf("after apply %s runs %d replicas, want %d per node (%v)", n, c, lifeReplicas/len(t.b.cluster.Nodes), m)
		}
	}
	return map[string]float64{id: r.dur.Seconds()}, nil
}

func (t *berthLife) remove(ctx context.Context) (map[string]float64, error) {
	r := t.b.exec(ctx, cmdSpec{name: t.b.berth, args: []string{"destroy", "-auto-approve", t.dir}, timeout: 5 * time.Minute, log: filepath.Join(t.b.tmp, "berth.log")})
	if r.err != nil {
		return nil, errors.New(r.failure())
	}
	if n, err := t.b.countLabelled(ctx, "berth.project="+t.project, false); err != nil || n != 0 {
		return nil, fmt.Errorf("after destroy: %d containers left (%v)", n, err)
	}
	return map[string]float64{"remove/berth": r.dur.Seconds()}, nil
}

// -------------------------------------------------------------- compose

type composeLife struct {
	b       *bench
	id      string // series id part: compose or compose-ssh
	project string
	dir     string
	ssh     bool
	limit   int // COMPOSE_PARALLEL_LIMIT; 0: compose's default
	timeout time.Duration
}

func (t *composeLife) name() string                    { return t.id }
func (t *composeLife) enter(ctx context.Context) error { return nil }
func (t *composeLife) exit(ctx context.Context) error  { return nil }

// echoHealthcheck is the Compose healthcheck of the echo image, as berth's
// own health block checks it in the same bench.
const echoHealthcheck = `    healthcheck:
      test: ["CMD", "/echo", "check"]
      interval: 1s
      timeout: 10s
      retries: 3
      start_period: 60s
`

func composeYAML(image string) string {
	return fmt.Sprintf(`version: "2.4"
services:
  echo:
    image: %s
    scale: %d
    network_mode: bridge
%s`, image, lifeReplicas, echoHealthcheck)
}

func (t *composeLife) setup(ctx context.Context) error {
	t.dir = filepath.Join(t.b.tmp, t.project)
	if err := writeFile(t.dir, "docker-compose.yml", composeYAML(imageV1)); err != nil {
		return err
	}
	if t.ssh {
		// docker-py imports paramiko before it can shell out to OpenSSH.
		if err := writeFile(filepath.Join(t.b.tmp, "pystub", "paramiko"), "__init__.py", "# empty: docker-py imports paramiko even when it shells out to ssh\n"); err != nil {
			return err
		}
	}
	t.b.atCleanup("docker-compose down "+t.project, t.reset)
	return nil
}

func (t *composeLife) env(overSSH bool) []string {
	n1 := t.b.cluster.Nodes[0]
	if !overSSH {
		return []string{"DOCKER_HOST=" + n1.DockerHost, "COMPOSE_INTERACTIVE_NO_CLI=1"}
	}
	env := []string{
		"DOCKER_HOST=ssh://" + t.b.cluster.User + "@" + n1.Addr,
		"PATH=" + t.b.sshWrap + ":" + os.Getenv("PATH"),
		"PYTHONPATH=" + filepath.Join(t.b.tmp, "pystub"),
	}
	if t.limit > 0 {
		env = append(env, fmt.Sprintf("COMPOSE_PARALLEL_LIMIT=%d", t.limit))
	}
	return env
}

func (t *composeLife) label() string { return "com.docker.compose.project=" + t.project }

// reset takes the project down over the node's unix socket and removes any
// leftover container and the project network.
func (t *composeLife) reset(ctx context.Context) error {
	cli := t.b.engines[t.b.cluster.Nodes[0].Name]
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", t.label()))})
	if err != nil {
		return err
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", t.label()))})
	if err != nil {
		return err
	}
	if len(cs) == 0 && len(nets) == 0 {
		return nil
	}
	r := t.b.exec(ctx, cmdSpec{name: "docker-compose", args: []string{"-p", t.project, "down", "--remove-orphans"}, dir: t.dir, env: t.env(false), timeout: 3 * time.Minute, log: filepath.Join(t.b.tmp, "compose.log")})
	if r.err != nil {
		logf("docker-compose down %s: %s (removing directly)", t.project, r.failure())
	}
	if err := t.b.removeLabelled(ctx, t.label()); err != nil {
		return err
	}
	// An endpoint may be released a moment after its container is gone.
	return poll(ctx, 250*time.Millisecond, 20*time.Second, func(ctx context.Context) (bool, error) {
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", t.label()))})
		if err != nil {
			return false, err
		}
		for _, n := range nets {
			if err := cli.NetworkRemove(ctx, n.ID); err != nil && !client.IsErrNotFound(err) {
				return false, err
			}
		}
		return len(nets) == 0, nil
	})
}

func (t *composeLife) deploy(ctx context.Context, image string, update bool) (map[string]float64, error) {
	if err := writeFile(t.dir, "docker-compose.yml", composeYAML(image)); err != nil {
		return nil, err
	}
	step := "deploy/"
	if update {
		step = "update/"
	}
	t0 := time.Now()
	timeout := t.timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	r := t.b.exec(ctx, cmdSpec{name: "docker-compose", args: []string{"-p", t.project, "up", "-d"}, dir: t.dir, env: t.env(t.ssh), timeout: timeout, log: filepath.Join(t.b.tmp, "compose.log")})
	if r.err != nil {
		return nil, errors.New(r.failure())
	}
	out := map[string]float64{step + t.id: r.dur.Seconds()}
	cli := t.b.engines[t.b.cluster.Nodes[0].Name]
	f := filters.NewArgs(filters.Arg("label", t.label()), filters.Arg("status", "running"), filters.Arg("health", "healthy"))
	err := poll(ctx, 100*time.Millisecond, 3*time.Minute, func(ctx context.Context) (bool, error) {
		cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: f})
		if err != nil {
			return false, err
		}
		n := 0
		for _, c := range cs {
			if c.Image == image {
				n++
			}
		}
		return n == lifeReplicas, nil
	})
	if err != nil {
		return out, fmt.Errorf("waiting for %d healthy %s: %w", lifeReplicas, image, err)
	}
	if !t.ssh {
		out[step+t.id+"-healthy"] = time.Since(t0).Seconds()
	}
	return out, nil
}

func (t *composeLife) remove(ctx context.Context) (map[string]float64, error) {
	r := t.b.exec(ctx, cmdSpec{name: "docker-compose", args: []string{"-p", t.project, "down"}, dir: t.dir, env: t.env(t.ssh), timeout: 5 * time.Minute, log: filepath.Join(t.b.tmp, "compose.log")})
	if r.err != nil {
		return nil, errors.New(r.failure())
	}
	if n, err := t.b.countLabelled(ctx, t.label(), false); err != nil || n != 0 {
		return nil, fmt.Errorf("after down: %d containers left (%v)", n, err)
	}
	return map[string]float64{"remove/" + t.id: r.dur.Seconds()}, nil
}

// ---------------------------------------------------------------- stack

type stackLife struct {
	b          *bench
	dir        string
	cli        *client.Client
	hadGwBrige bool
	swarmInit  []float64 // seconds, per round (not in the table)
	swarmLeave []float64
}

func (b *bench) stackName() string { return "benchst" + b.id }

func (t *stackLife) name() string { return "stack" }

func (t *stackLife) stackYAML(image string) string {
	return fmt.Sprintf(`version: "3.8"
services:
  echo:
    image: %s
%s    networks: [net]
    deploy:
      replicas: %d
      update_config:
        parallelism: %d
        order: start-first
        monitor: %s
networks:
  net:
    external: true
    name: %s
`, image, echoHealthcheck, lifeReplicas, t.b.opts.parallelism, t.b.opts.monitor, t.netName())
}

func (t *stackLife) env() []string {
	return []string{"DOCKER_HOST=" + t.b.cluster.Nodes[0].DockerHost}
}

// setup makes node1's engine a single-node swarm manager, unless it is in a
// swarm already (then the stack is left out: leaving would not leave the
// machine as found).
func (t *stackLife) setup(ctx context.Context) error {
	n1 := t.b.cluster.Nodes[0]
	t.cli = t.b.engines[n1.Name]
	info, err := t.cli.Info(ctx)
	if err != nil {
		return err
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		return fmt.Errorf("%s's engine is already in a swarm (state %s)", n1.Name, info.Swarm.LocalNodeState)
	}
	nets, err := t.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", "docker_gwbridge"))})
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Name == "docker_gwbridge" {
			t.hadGwBrige = true
		}
	}
	t.dir = filepath.Join(t.b.tmp, t.b.stackName())
	if err := writeFile(t.dir, "stack.yml", t.stackYAML(imageV1)); err != nil {
		return err
	}
	t.b.atCleanup("remove docker_gwbridge on "+n1.Name, t.removeGwBridge)
	t.b.atCleanup("leave the swarm on "+n1.Name, t.leave)
	return nil
}

// enter makes node1 a single-node swarm for the stack's turn only: berth and
// compose (which warns about swarm mode and makes its networks attachable)
// run against a plain engine.
func (t *stackLife) enter(ctx context.Context) error {
	n1 := t.b.cluster.Nodes[0]
	r := t.b.exec(ctx, cmdSpec{name: "docker", args: []string{"swarm", "init", "--advertise-addr", n1.Addr}, env: t.env(), timeout: time.Minute, log: filepath.Join(t.b.tmp, "stack.log")})
	if r.err != nil {
		return fmt.Errorf("docker swarm init: %s", r.failure())
	}
	t.swarmInit = append(t.swarmInit, r.dur.Seconds())
	// No IPVS here, so no routing mesh: without the ingress network and with
	// the tasks on a swarm-scoped bridge network (like berth's and compose's
	// containers) no task needs docker_gwbridge, whose endpoint count
	// Docker 20.10 leaked under load when 30 tasks went at once.
	if err := t.cli.NetworkRemove(ctx, "ingress"); err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("remove the ingress network: %w", err)
	}
	_, err := t.cli.NetworkCreate(ctx, t.netName(), network.CreateOptions{Driver: "bridge", Scope: "swarm"})
	if err != nil {
		return fmt.Errorf("create network %s: %w", t.netName(), err)
	}
	return nil
}

func (t *stackLife) exit(ctx context.Context) error {
	t0 := time.Now()
	err := t.leave(ctx)
	t.swarmLeave = append(t.swarmLeave, time.Since(t0).Seconds())
	return err
}

// leave removes the stack, leaves the swarm and removes docker_gwbridge if
// swarm init made it.
func (t *stackLife) leave(ctx context.Context) error {
	info, err := t.cli.Info(ctx)
	if err != nil {
		return err
	}
	if info.Swarm.LocalNodeState == swarm.LocalNodeStateInactive {
		return nil
	}
	if err := t.reset(ctx); err != nil {
		logf("stack reset: %v", err)
	}
	if err := t.cli.NetworkRemove(ctx, t.netName()); err != nil && !client.IsErrNotFound(err) {
		logf("remove network %s: %v", t.netName(), err)
	}
	r := t.b.exec(ctx, cmdSpec{name: "docker", args: []string{"swarm", "leave", "--force"}, env: t.env(), timeout: time.Minute, log: filepath.Join(t.b.tmp, "stack.log")})
	if r.err != nil {
		return fmt.Errorf("docker swarm leave --force: %s", r.failure())
	}
	return nil
}

// removeGwBridge removes docker_gwbridge at the end if swarm made it.
func (t *stackLife) removeGwBridge(ctx context.Context) error {
	if t.hadGwBrige {
		return nil
	}
	return poll(ctx, 250*time.Millisecond, 30*time.Second, func(ctx context.Context) (bool, error) {
		err := t.cli.NetworkRemove(ctx, "docker_gwbridge")
		return err == nil || client.IsErrNotFound(err), err
	})
}

func (t *stackLife) netName() string { return t.b.stackName() + "net" }

func (t *stackLife) label() string { return "com.docker.stack.namespace=" + t.b.stackName() }

// reset removes the stack and waits until its containers and network are gone.
func (t *stackLife) reset(ctx context.Context) error {
	svcs, err := t.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", t.label()))})
	if err != nil && !strings.Contains(err.Error(), "not a swarm manager") {
		return err
	}
	if len(svcs) > 0 {
		r := t.b.exec(ctx, cmdSpec{name: "docker", args: []string{"stack", "rm", t.b.stackName()}, env: t.env(), timeout: 2 * time.Minute, log: filepath.Join(t.b.tmp, "stack.log")})
		if r.err != nil {
			return errors.New(r.failure())
		}
	}
	if err := t.waitGone(ctx, 2*time.Minute); err != nil {
		return err
	}
	return t.b.removeLabelled(ctx, t.label())
}

func (t *stackLife) waitGone(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, 100*time.Millisecond, timeout, func(ctx context.Context) (bool, error) {
		cs, err := t.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", t.label()))})
		if err != nil {
			return false, err
		}
		nets, err := t.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", t.b.stackName()+"_default"))})
		if err != nil {
			return false, err
		}
		return len(cs) == 0 && len(nets) == 0, nil
	})
}

// deploy deploys (or updates to) image by its ID, as issue 9 asks ("image
// by ID"): sha256:... is a valid reference to swarm's manager (a repository
// "sha256" with the hex as its tag, so its validation passes), the engine's
// task executor never pulls an image referenced by ID, and with
// --resolve-image never the CLI asks no registry either.
func (t *stackLife) deploy(ctx context.Context, image string, update bool) (map[string]float64, error) {
	img, err := t.cli.ImageInspect(ctx, image)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", image, t.b.cluster.Nodes[0].Name, err)
	}
	ref := img.ID
	if err := writeFile(t.dir, "stack.yml", t.stackYAML(ref)); err != nil {
		return nil, err
	}
	id := "deploy/stack"
	if update {
		id = "update/stack"
	}
	t0 := time.Now()
	r := t.b.exec(ctx, cmdSpec{name: "docker", args: []string{"stack", "deploy", "--resolve-image", "never", "-c", "stack.yml", t.b.stackName()}, dir: t.dir, env: t.env(), timeout: 2 * time.Minute, log: filepath.Join(t.b.tmp, "stack.log")})
	if r.err != nil {
		return nil, errors.New(r.failure())
	}
	svc := t.b.stackName() + "_echo"
	f := filters.NewArgs(filters.Arg("service", svc), filters.Arg("desired-state", "running"))
	var last string
	err = poll(ctx, 100*time.Millisecond, 4*time.Minute, func(ctx context.Context) (bool, error) {
		tasks, err := t.cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		if err != nil {
			return false, err
		}
		n := 0
		for _, k := range tasks {
			if k.Status.State == swarm.TaskStateRunning && k.Spec.ContainerSpec != nil && k.Spec.ContainerSpec.Image == ref {
				n++
			}
		}
		last = fmt.Sprintf("%d of %d tasks running %s", n, lifeReplicas, image)
		return n == lifeReplicas, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the stack: %w (%s)", err, last)
	}
	return map[string]float64{id: time.Since(t0).Seconds()}, nil
}

func (t *stackLife) remove(ctx context.Context) (map[string]float64, error) {
	t0 := time.Now()
	r := t.b.exec(ctx, cmdSpec{name: "docker", args: []string{"stack", "rm", t.b.stackName()}, env: t.env(), timeout: 2 * time.Minute, log: filepath.Join(t.b.tmp, "stack.log")})
	if r.err != nil {
		return nil, errors.New(r.failure())
	}
	err := poll(ctx, 100*time.Millisecond, 3*time.Minute, func(ctx context.Context) (bool, error) {
		cs, err := t.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", t.label()))})
		return err == nil && len(cs) == 0, err
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the stack's containers to go: %w", err)
	}
	d := time.Since(t0).Seconds()
	// Not timed: the network goes shortly after; the next deploy needs it gone.
	if err := t.waitGone(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	return map[string]float64{"remove/stack": d}, nil
}
