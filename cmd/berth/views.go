package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

// The views: one interface per command that talks to the nodes (planView,
// applyView, statusView), each with a human and a JSON implementation,
// chosen once from the flags. Each implements executor.View, what the
// operation shows while it runs; the rest of each interface shows what the
// operation returned. Views decide layout and colour from the data, never
// by parsing text.

const (
	ansiGreen   = "\x1b[32m"
	ansiMagenta = "\x1b[35m"
	ansiCyan    = "\x1b[36m"
)

// viewBase is what every view shares: its streams and colours, and the
// diagnostics, which go to stderr as text in both views (as validate's
// human view prints them).
type viewBase struct {
	s     Streams
	color bool // stdout
	// errColor colours stderr.
	errColor bool
}

func newViewBase(s Streams, noColorFlag bool) viewBase {
	return viewBase{s: s, color: !noColor(s, noColorFlag), errColor: errColor(s, noColorFlag)}
}

func (v viewBase) Diagnostics(files map[string]*hcl.File, diags hcl.Diagnostics) {
	writeDiags(v.s, files, diags, v.errColor)
}

// The parts of executor.View that a command which applies nothing never
// sees called.
func (viewBase) Confirm(*planner.Plan) (bool, error) {
	return false, errors.New("this command applies nothing")
}
func (viewBase) Applying(*planner.Plan, time.Time) {}
func (viewBase) Event(executor.Event)              {}
func (viewBase) ImageOutput() executor.ImageOutput { return executor.ImageOutput{} }

// planView shows plan's and show's output.
type planView interface {
	executor.View
	// Saved says that the plan was saved to path.
	Saved(path string)
}

func newPlanView(s Streams, jsonOut, noColorFlag bool) planView {
	if jsonOut {
		return planJSON{newViewBase(s, noColorFlag)}
	}
	return planHuman{newViewBase(s, noColorFlag)}
}

// planHuman shows the plan as text, its symbols coloured by action kind.
type planHuman struct{ viewBase }

func (v planHuman) Planned(p *planner.Plan) error { return writePlanText(v.s.Out, p, v.color) }

func (v planHuman) Saved(path string) {
	fmt.Fprintf(v.s.Out, "\nSaved the plan to %s. To carry it out exactly: berth apply %s\n", path, path)
}

// planJSON shows the plan as one indented JSON document (the plan's own
// format, format_version planner.FormatVersion).
type planJSON struct{ viewBase }

func (v planJSON) Planned(p *planner.Plan) error {
	enc := json.NewEncoder(v.s.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

func (planJSON) Saved(string) {}

// writePlanText renders p for people, coloured when color is set.
func writePlanText(w io.Writer, p *planner.Plan, color bool) error {
	if !color {
		return p.WriteText(w)
	}
	return p.WriteStyledText(w, planStyle)
}

// planStyle colours a plan's symbols by action kind (create green, update
// yellow, replace magenta, delete red; recovery's restore and discard
// plain), a warning's bullet red, and makes headings and the summary bold.
func planStyle(part planner.TextPart, kind planner.ActionKind, text string) string {
	style := ""
	switch part {
	case planner.PartSymbol:
		switch kind {
		case planner.Create:
			style = ansiGreen
		case planner.Update:
			style = ansiYellow
		case planner.Replace:
			style = ansiMagenta
		case planner.Delete:
			style = ansiRed
		}
	case planner.PartHeading, planner.PartSummary:
		style = ansiBold
	case planner.PartBullet:
		style = ansiRed
	}
	if style == "" {
		return text
	}
	return style + text + ansiReset
}
