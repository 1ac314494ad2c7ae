package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

func init() {
	register(&command{
		name:     "plan",
		synopsis: "Show what apply would change on the nodes",
		usage:    "plan [options] [DIR]",
		help: `
Reads the configuration in DIR (default: the current directory), gathers the
live state of every node over SSH and the Docker API, places each service's
replicas and prints what apply would change, in Terraform's notation:
  +  create   ~  update in place   -/+  replace, stop first
  +/-  replace, start first   -  delete
Nothing is changed on any node.

With -markdown the plan is printed as GitHub-flavoured Markdown for a
pull-request comment: the summary, warnings, image transfers, a table of
changes per service and the field diffs in collapsed sections. Past
65,536 characters it is cut at a service boundary with a note naming
'berth show FILE' for the full plan.

With -out FILE the plan is saved (mode 0600) for 'berth apply FILE', which
refuses it if any node changed since. Sensitive values are not saved:
apply needs the same -var, -var-file or BERTH_VAR_ inputs again.

A node that cannot be read is left alone: the plan covers the other nodes
only and its summary line names the unreachable ones. With
-reschedule-unreachable the replicas that may run there are placed on
reachable nodes instead (except those with a named volume); once the node
is back, the next plan removes the duplicates there.

A node whose block was removed but that the project's last apply recorded
is read at its recorded address: the plan names it and moves or removes
the project's containers there (never its volumes or other containers).

Exit status: 0 success (with -detailed-exitcode: no changes), 1 error,
2 changes present (with -detailed-exitcode). With -detailed-exitcode and an
unreachable node: 1, unless -allow-unreachable is given; then 2 when there
are changes or replicas that may be missing (left to the unreachable
nodes), 0 only when there is nothing at all.`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			cf := addConnFlags(fs)
			out := fs.String("out", "", "Save the plan to FILE for a later 'berth apply FILE'.")
			jsonOut := fs.Bool("json", false, "Print the plan as a JSON document (format_version "+planner.FormatVersion+").")
			markdown := fs.Bool("markdown", false, "Print the plan as Markdown for a pull-request comment (cut to 65,536 characters at a service boundary).")
			detailed := fs.Bool("detailed-exitcode", false, "Exit 2 when there are changes, 0 when there are none.")
			allowUnreachable := fs.Bool("allow-unreachable", false, "With -detailed-exitcode: accept a plan made without the nodes that could not be read (else exit 1).")
			destroy := fs.Bool("destroy", false, "Plan the removal of every container of the project.")
			reschedule := fs.Bool("reschedule-unreachable", false, "Place the replicas that may run on an unreachable node on reachable nodes (not those with a named volume); implies -allow-unreachable.")
			recover := fs.String("recover", planner.RecoverRollback, "How to treat an interrupted apply: rollback or forward.")
			return func(ctx context.Context, s Streams, args []string) error {
				dir, err := dirArg(args)
				if err != nil {
					return err
				}
				if *recover != planner.RecoverRollback && *recover != planner.RecoverForward {
					return usageErr("-recover must be rollback or forward")
				}
				cfg, err := loadConfig(s, dir, cf)
				if err != nil {
					return err
				}
				s = redactStreams(s, cfg)
				req := cf.request(s, cfg, executor.OpPlan)
				req.Recover, req.Destroy, req.RescheduleUnreachable = *recover, *destroy, *reschedule
				if *jsonOut && *markdown {
					return usageErr("-json and -markdown exclude each other")
				}
				view := newPlanView(s, *jsonOut, *cf.noColor)
				if *markdown {
					view = planMarkdown{viewBase: newViewBase(s, *cf.noColor), planFile: *out}
				}
				o, err := runOp(ctx, cfg, req, view)
				if err != nil {
					return opError(o, err, error.Error)
				}
				p := o.Plan
				if *out != "" {
					abs, _ := filepath.Abs(dir)
					if err := writePlanFile(*out, &planner.SavedPlan{BerthVersion: Version, ConfigDir: abs, Plan: p}); err != nil {
						return fmt.Errorf("save the plan: %w", err)
					}
					view.Saved(*out)
				}
				if *detailed {
					return detailedExit(p, *allowUnreachable || *reschedule)
				}
				return nil
			}
		},
	})
	register(&command{
		name:     "show",
		synopsis: "Show a saved plan",
		usage:    "show [options] FILE",
		help: `
Prints a plan saved with 'berth plan -out FILE', as text, (-json) as the
same JSON document 'berth plan -json' prints, or (-markdown) as Markdown
for a pull-request comment. Touches no node.`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			jsonOut := fs.Bool("json", false, "Print the plan as a JSON document.")
			markdown := fs.Bool("markdown", false, "Print the plan as Markdown for a pull-request comment.")
			noColorFlag := fs.Bool("no-color", false, "Do not colour the output (also: NO_COLOR).")
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) != 1 {
					return usageErr("show needs exactly one plan file")
				}
				sp, err := readPlanFile(args[0])
				if err != nil {
					return err
				}
				if *jsonOut && *markdown {
					return usageErr("-json and -markdown exclude each other")
				}
				if *markdown {
					return planMarkdown{viewBase: newViewBase(s, *noColorFlag), planFile: args[0]}.Planned(sp.Plan)
				}
				return newPlanView(s, *jsonOut, *noColorFlag).Planned(sp.Plan)
			}
		},
	})
}

// detailedExit is plan -detailed-exitcode's status: 2 with changes, 0
// without. A plan made without some nodes cannot tell that nothing is
// missing: it exits 1 unless allowUnreachable, and then 2 also when
// replicas may be missing on the unreachable nodes.
func detailedExit(p *planner.Plan, allowUnreachable bool) error {
	if down := p.Unreachable(); len(down) > 0 && !allowUnreachable {
		return exitCode(1, fmt.Errorf("node %s could not be read, so -detailed-exitcode cannot tell whether the cluster matches the configuration; "+
			"add -allow-unreachable to accept a plan of the reachable nodes (exit 2 when anything is or may be missing)", strings.Join(down, ", ")))
	}
	if !p.Empty() || p.MayBeMissing() {
		return exitCode(2, nil)
	}
	return nil
}
