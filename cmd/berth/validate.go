package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/berth-dev/berth/config"
)

func init() {
	register(&command{
		name:     "validate",
		synopsis: "Check the configuration without touching any node",
		usage:    "validate [options] [DIR...]",
		help: `
Checks the configuration in DIR (default: the current directory) without
touching the network: syntax, types, references, and the rules that span
blocks (ports, placement, dependencies). Every problem is reported, each as
FILE:LINE:COL with a source snippet. Several directories may be given.

Variables without a value are allowed and treated as unknown, so that CI can
validate without secrets; checks that need their values are skipped. Pass
-var or -var-file to check values too.

Exit status: 0 when the configuration is valid, 1 otherwise.`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			jsonOut := fs.Bool("json", false, "Print the result as a JSON document.")
			noColorFlag := fs.Bool("no-color", false, "Do not colour the output (also: NO_COLOR).")
			vars := addVarFlags(fs)
			return func(ctx context.Context, s Streams, args []string) error {
				dirs := args
				if len(dirs) == 0 {
					dirs = []string{"."}
				}
				in := vars.inputs(s)
				in.AllowUnset = true
				var all hcl.Diagnostics
				files := map[string]*hcl.File{}
				var unset []string
				for _, dir := range dirs {
					cfg, diags := config.Load(dir, in)
					all = append(all, diags...)
					if cfg != nil {
						maps.Copy(files, cfg.Files)
						for _, v := range cfg.Variables {
							if v.Source == "" && !diags.HasErrors() {
								unset = append(unset, v.Name)
							}
						}
					}
				}
				errs, warns := countDiags(all)
				if *jsonOut {
					doc := map[string]any{
						"format_version": "1.0",
						"valid":          errs == 0,
						"error_count":    errs,
						"warning_count":  warns,
						"diagnostics":    diagsJSON(all),
					}
					enc := json.NewEncoder(s.Out)
					enc.SetIndent("", "  ")
					if err := enc.Encode(doc); err != nil {
						return err
					}
					if errs > 0 {
						return exitCode(1, nil)
					}
					return nil
				}
				writeDiags(s, files, all, errColor(s, *noColorFlag))
				if errs > 0 {
					summary := plural(errs, "error")
					if warns > 0 {
						summary += ", " + plural(warns, "warning")
					}
					fmt.Fprintln(s.Err, summary)
					return exitCode(1, nil)
				}
				if len(unset) > 0 {
					fmt.Fprintf(s.Out, "Note: no value for %s; the checks that need %s were skipped.\n",
						"var."+strings.Join(unset, ", var."), map[bool]string{true: "it", false: "them"}[len(unset) == 1])
				}
				if warns > 0 {
					fmt.Fprintf(s.Out, "Success! The configuration is valid, with %s.\n", plural(warns, "warning"))
				} else {
					fmt.Fprintln(s.Out, "Success! The configuration is valid.")
				}
				return nil
			}
		},
	})
}
