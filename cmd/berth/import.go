package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/importcompose"
)

// stringsFlag is a repeatable flag.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, ",") }
func (f *stringsFlag) Set(v string) error { *f = append(*f, v); return nil }

func init() {
	register(&command{
		name:     "import",
		synopsis: "Write a berth configuration from Compose or stack files",
		usage:    "import compose [-o DIR] [-profile NAME] FILE...",
		help: `
Reads Compose or Swarm stack files (several are merged in order, as
'docker compose -f A -f B' does) and writes a berth configuration in HCL:
services, with image or build, replicas, placement, ports, health check,
update policy, resources, restart policy, environment, volumes and more;
a variable for every ${NAME} interpolation, used as var.NAME (its value in
.env or the environment is never written: .env often holds passwords);
variables named like secrets (PASSWORD, SECRET, TOKEN, KEY) sensitive;
and placeholder node blocks to fill in.

Anything not carried over is listed on stderr as a warning naming the
Compose file, line and key.

Without -o the HCL goes to stdout; with -o DIR it is written to
DIR/main.hcl (DIR is created; an existing main.hcl is not overwritten).

Exit status: 0 imported (warnings or not), 1 error.`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			out := fs.String("o", "", "Write the configuration to `DIR`/main.hcl instead of stdout.")
			var profiles stringsFlag
			fs.Var(&profiles, "profile", "Enable a Compose profile (repeatable).")
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) == 0 || args[0] != "compose" {
					return usageErr("import needs a kind of file: berth import compose FILE...")
				}
				files := args[1:]
				if len(files) == 0 {
					return usageErr("import compose needs at least one Compose file")
				}
				outDir := *out
				if outDir == "" {
					outDir = "."
				}
				res, err := importcompose.Import(ctx, importcompose.Options{Files: files, Profiles: profiles, OutDir: outDir})
				if err != nil {
					return err
				}
				for _, w := range res.Warnings {
					fmt.Fprintf(s.Err, "Warning: %s\n", w)
				}
				if *out == "" {
					_, err := s.Out.Write(res.HCL)
					return err
				}
				if err := os.MkdirAll(*out, 0o755); err != nil {
					return err
				}
				path := filepath.Join(*out, "main.hcl")
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if errors.Is(err, os.ErrExist) {
					return fmt.Errorf("%s exists: not overwritten", path)
				}
				if err != nil {
					return err
				}
				if _, err := f.Write(res.HCL); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				fmt.Fprintf(s.Err, "Wrote %s (%d warning%s). Fill in the node blocks, then: berth validate %s\n", path, len(res.Warnings), map[bool]string{true: "", false: "s"}[len(res.Warnings) == 1], *out)
				return nil
			}
		},
	})
}
