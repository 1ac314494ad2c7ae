package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/executor/swarmexec"
)

// runOp runs an operation with the project's engine: Docker Swarm when the
// project has a swarm block, else berth's own placement over SSH.
func runOp(ctx context.Context, cfg *config.Config, req executor.Request, view executor.View) (*executor.Outcome, error) {
	if cfg.Project.Swarm != nil {
		return swarmexec.Run(ctx, cfg, req, view)
	}
	return executor.Run(ctx, cfg, req, view)
}

// swarmStatus is `berth status` for a Swarm project: its services like
// `docker service ls`, their tasks like `docker service ps`.
func swarmStatus(ctx context.Context, s Streams, cfg *config.Config, cf *connFlags, jsonOut bool) error {
	st, err := swarmexec.GetStatus(ctx, cfg, cf.request(s, cfg, executor.OpStatus).Session)
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	w := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(s.Out, "Swarm (through manager %s), network %s\n", st.Manager, st.Network)
	for _, sk := range st.Skipped {
		fmt.Fprintf(s.Out, "  skipped manager %s\n", sk)
	}
	fmt.Fprintln(s.Out)
	fmt.Fprintln(w, "SERVICE\tREPLICAS\tIMAGE\tPORTS\tUPDATE")
	for _, ss := range st.Services {
		name := ss.Service
		if !ss.InConfig {
			name += " (not in configuration)"
		}
		fmt.Fprintf(w, "%s\t%d/%d\t%s\t%s\t%s\n", name, ss.Running, ss.Desired, ss.Image, strings.Join(ss.Ports, ", "), ss.UpdateMsg)
	}
	w.Flush()
	fmt.Fprintln(s.Out)
	fmt.Fprintln(w, "TASK\tNODE\tSTATE\tERROR")
	for _, ss := range st.Services {
		for _, t := range ss.Tasks {
			fmt.Fprintf(w, "%s.%d\t%s\t%s\t%s\n", ss.Service, t.Slot, t.Node, t.State, t.Error)
		}
	}
	return w.Flush()
}
