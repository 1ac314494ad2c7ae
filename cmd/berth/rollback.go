package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/berth-dev/berth/executor"
)

func init() {
	register(&command{
		name:     "rollback",
		synopsis: "Return every service to the revision of an earlier apply",
		usage:    "rollback [options] [-to APPLY_ID] [DIR]",
		help: `
Plans, shows, confirms and applies a return to the previous successful
revision of each service: the container spec (image by its ID, command,
env, labels, volumes, health check, resources) that the successful apply
before the latest one recorded in its audit record, or the one of the apply
named by -to (an ID from 'berth status', or a unique prefix of one).
Replicas, placement, ports and the update policy stay as configured. It is
an ordinary apply: health-gated, rolled back itself if it fails, audited
(so a second rollback returns to where the first started).

The configuration on disk is not changed: the next plan shows the
difference from it, to decide on (edit the configuration, or apply it).

It refuses, with nothing changed, when the recorded image is no longer on
a node that needs it nor on the local engine (it is never pulled or built
again: the name may stand for another image now), or when a sensitive env
value differs from the configuration's (berth stores only its hash).

Exit status: as for apply.`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			cf := addConnFlags(fs)
			to := fs.String("to", "", "Roll back to the revision of this apply (default: the successful apply before the latest).")
			af := addApplyFlags(fs)
			return func(ctx context.Context, s Streams, args []string) error {
				dir, err := dirArg(args)
				if err != nil {
					return err
				}
				r, err := af.run(s, cf)
				if err != nil {
					return err
				}
				r.rollback, r.rollbackTo = true, *to
				cfg, err := loadConfig(s, dir, cf)
				if err != nil {
					return err
				}
				if cfg.Project.Swarm != nil {
					return fmt.Errorf("berth rollback works on berth's own containers; project %q runs on Docker Swarm: use docker service rollback there", cfg.Project.Name)
				}
				return r.run(ctx, cfg, executor.OpApply, nil)
			}
		},
	})
}
