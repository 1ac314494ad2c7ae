package main

import (
	"context"
	"flag"

	"github.com/berth-dev/berth/executor"
)

func init() {
	register(&command{
		name:     "status",
		synopsis: "Show the services and replicas running on the nodes",
		usage:    "status [options] [DIR]",
		help: `
Reads the configuration in DIR (default: the current directory), gathers the
live state of every node over SSH and the Docker API, and shows, like
'docker service ls' and 'docker service ps':
  - per service: desired and running replicas, image and ports (a service
    found only in container labels is marked "not in configuration");
  - per replica: its node, container, state, health and image;
  - every node that could not be reached, with the reason.
Nothing is changed on any node.

Exit status: 0 when every node was read, 1 when the configuration has
errors or any node is unreachable (everything that could be read is still
printed, as with Terraform's partial results).`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			cf := addConnFlags(fs)
			jsonOut := fs.Bool("json", false, "Print the status as a JSON document (format_version "+statusFormatVersion+").")
			return func(ctx context.Context, s Streams, args []string) error {
				dir, err := dirArg(args)
				if err != nil {
					return err
				}
				cfg, err := loadConfig(s, dir, cf)
				if err != nil {
					return err
				}
				s = redactStreams(s, cfg)
				o, err := executor.Run(ctx, cfg, cf.request(s, cfg, executor.OpStatus), nil)
				if err != nil {
					return err
				}
				st := buildStatus(cfg, o.Live)
				if err := newStatusView(s, *jsonOut, *cf.noColor).Status(st); err != nil {
					return err
				}
				if st.Unreachable > 0 {
					return exitCode(1, nil)
				}
				return nil
			}
		},
	})
}
