package main

import (
	"context"

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
