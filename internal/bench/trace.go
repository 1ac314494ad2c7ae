package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/planner"
)

// tracePlan replays what 'berth plan DIR' does, phase by phase, with berth's
// own packages (the same calls as cmd/berth's plan: config.Load,
// executor.Open, per node the five gather calls in parallel, local image
// facts, planner.Make), runs times, and prints the median of each phase.
// It shows where a plan's wall time goes without changing berth.
func tracePlan(ctx context.Context, w io.Writer, dir string, runs, parallelism int) error {
	phases := map[string][]time.Duration{}
	var order []string
	add := func(name string, d time.Duration) {
		if _, ok := phases[name]; !ok {
			order = append(order, name)
		}
		phases[name] = append(phases[name], d)
	}
	var mu sync.Mutex
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		cfg, diags := config.Load(dir, config.Inputs{Environ: os.Environ()})
		if diags.HasErrors() || cfg == nil {
			return fmt.Errorf("config: %s", diags.Error())
		}
		add("config.Load", time.Since(t0))

		t1 := time.Now()
		sess := executor.Open(ctx, cfg, executor.Options{Parallelism: parallelism, SSH: transport.Options{Environ: os.Environ(), NoTTY: true}})
		add("executor.Open (all nodes: TCP, SSH handshake, auth)", time.Since(t1))

		t2 := time.Now()
		live := &planner.Live{Nodes: map[string]*planner.NodeState{}}
		var wg sync.WaitGroup
		sem := make(chan struct{}, parallelism)
		for _, name := range sess.Names() {
			n, err := sess.Node(name)
			if err != nil {
				sess.Close()
				return err
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				tn := time.Now()
				st, err := gatherTimed(ctx, n, cfg.Project.Name, func(call string, d time.Duration) {
					mu.Lock()
					add("  gather call: "+call, d)
					mu.Unlock()
				})
				mu.Lock()
				add("  gather one node (its calls in parallel)", time.Since(tn))
				if err == nil {
					live.Nodes[name] = st
				} else {
					live.Nodes[name] = &planner.NodeState{Name: name, Error: err.Error()}
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		add("gather (all nodes)", time.Since(t2))

		t3 := time.Now()
		imgs, err := images.LocalFacts(ctx, cfg, true, os.Environ())
		if err != nil {
			sess.Close()
			return err
		}
		add("local image facts (host engine)", time.Since(t3))
		t4 := time.Now()
		_, pd := planner.Make(cfg, live, planner.Options{BuildImages: imgs.BuildImages, LocalImages: imgs.LocalImages, LocalEngineID: imgs.LocalEngineID})
		if pd.HasErrors() {
			sess.Close()
			return fmt.Errorf("plan: %s", pd.Error())
		}
		add("planner.Make", time.Since(t4))
		t5 := time.Now()
		sess.Close()
		add("session close", time.Since(t5))
		add("total (in process; the CLI adds process start-up)", time.Since(t0))
	}
	fmt.Fprintf(w, "berth plan %s, phase by phase (median of %d runs; gather calls: median over nodes and runs)\n", dir, runs)
	for _, name := range order {
		d := phases[name]
		slices.Sort(d)
		fmt.Fprintf(w, "  %-58s %8.1f ms   (min %.1f, max %.1f, n %d)\n", name, ms(d[len(d)/2]), ms(d[0]), ms(d[len(d)-1]), len(d))
	}
	return nil
}

// traceNote runs tracePlan and adds its lines to the section's notes.
func (b *bench) traceNote(sec *Section, dir string, runs, parallelism int) {
	var buf strings.Builder
	if err := tracePlan(b.ctx, &buf, dir, runs, parallelism); err != nil {
		sec.note("trace of berth plan failed: %v", err)
		return
	}
	for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		sec.Notes = append(sec.Notes, "trace: "+strings.TrimSpace(l))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// gatherTimed is executor.GatherNode with each call timed.
func gatherTimed(ctx context.Context, n executor.Node, project string, rec func(string, time.Duration)) (*planner.NodeState, error) {
	st := &planner.NodeState{Name: n.Name(), Reachable: true}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	call := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			err := f()
			rec(name, time.Since(t))
			if err != nil {
				mu.Lock()
				errs = append(errs, name+": "+err.Error())
				mu.Unlock()
			}
		}()
	}
	call("Info (GET /info)", func() (err error) { st.Engine, err = n.Info(ctx); return })
	call("Containers (GET /containers/json)", func() (err error) { st.Containers, st.Foreign, err = n.Containers(ctx, project); return })
	call("Images (GET /images/json)", func() (err error) { st.Images, err = n.Images(ctx); return })
	call("HostPorts (exec: cat /proc/net/*)", func() (err error) { st.HostPorts, err = n.HostPorts(ctx); return })
	call("Volumes (GET /volumes)", func() (err error) {
		st.Volumes, err = n.Volumes(ctx, map[string]string{planner.LabelProject: project})
		return
	})
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return st, nil
}
