package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

// applyView shows apply's and destroy's output: the plan, the question,
// the progress and the result.
type applyView interface {
	executor.View
	// Result shows the outcome; err is the operation's error (nil: it
	// succeeded), which Run prints as errorText renders it.
	Result(o *executor.Outcome, err error)
	// ErrorText renders an error of the operation for people.
	ErrorText(err error) string
}

// applyContext is what apply's views know of the run: the configuration
// (endpoints, and the commands of the advice name its directory) and the
// options that matter to the text.
type applyContext struct {
	cfg     *config.Config
	destroy bool
	saved   bool // a saved plan is applied
	vars    bool // the run had -var or -var-file options
}

func (c applyContext) ErrorText(err error) string { return errorText(err, c.cfg.Dir, c.vars) }

func newApplyView(s Streams, jsonOut, noColorFlag bool, c applyContext) applyView {
	if jsonOut {
		return &applyJSON{viewBase: newViewBase(s, noColorFlag), applyContext: c}
	}
	return &applyHuman{viewBase: newViewBase(s, noColorFlag), applyContext: c, now: time.Now}
}

// applyHuman shows the plan as text, asks on the terminal, draws progress
// (in place on a terminal) and ends with a summary and the endpoints.
type applyHuman struct {
	viewBase
	applyContext
	progress *progress
	now      func() time.Time // the clock of the summary's duration
}

func (v *applyHuman) Planned(p *planner.Plan) error { return writePlanText(v.s.Out, p, v.color) }

func (v *applyHuman) Confirm(*planner.Plan) (bool, error) {
	if !v.s.InTerminal {
		return false, errors.New("no terminal to confirm on: review the plan and run again with -auto-approve, or apply a saved plan (berth plan -out FILE; berth apply FILE)")
	}
	verb := "perform these actions"
	if v.destroy {
		verb = "destroy every container of this project"
	}
	fmt.Fprintf(v.s.Out, "\nDo you want to %s?\n  berth will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", verb)
	line, _ := bufio.NewReader(v.s.In).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return false, nil
	}
	fmt.Fprintln(v.s.Out)
	return true, nil
}

func (v *applyHuman) Applying(_ *planner.Plan, at time.Time) {
	v.progress = newProgress(v.s.Out, v.s.OutTerminal, v.color, at)
}

func (v *applyHuman) Event(e executor.Event) {
	if v.progress == nil {
		// Events before the plan: a Swarm project's recovery of a killed
		// apply, which runs before it plans.
		v.progress = newProgress(v.s.Out, v.s.OutTerminal, v.color, e.Time)
	}
	v.progress.event(e)
}

// ImageOutput: image progress goes to stderr (never stdout, where the
// replicas' lines are redrawn), in place only when stderr is a terminal.
func (v *applyHuman) ImageOutput() executor.ImageOutput {
	return executor.ImageOutput{Progress: v.s.Err, Terminal: v.s.ErrTerminal}
}

func (v *applyHuman) Result(o *executor.Outcome, err error) {
	switch {
	case err != nil:
	case o.Result != "":
		add, change, repl, destroy := o.Plan.Summary()
		what := "Apply"
		if v.destroy {
			what = "Destroy"
		}
		noun := "Replicas"
		if o.Plan.Swarm != nil {
			noun = "Swarm services"
		}
		fmt.Fprintf(v.s.Out, "\n%s complete! %s: %d added, %d changed, %d replaced, %d destroyed. (%s)\n",
			what, noun, add, change, repl, destroy, v.now().Sub(o.Started).Round(10*time.Millisecond))
		if !v.destroy {
			writeEndpoints(v.s, v.cfg, o.Plan)
		}
	case v.saved:
		fmt.Fprintln(v.s.Out, o.Plan.SummaryLine())
	case !v.destroy:
		writeEndpoints(v.s, v.cfg, o.Plan)
	}
}

// applyJSON prints JSON lines: the plan, every event, and the result.
type applyJSON struct {
	viewBase
	applyContext
	mu sync.Mutex // events come from every node at once
}

// jsonPlanLine is apply -json's first line. Fields are in the order
// encoding/json gives a map's keys, as the lines were once built from maps.
type jsonPlanLine struct {
	Plan *planner.Plan `json:"plan"`
	Type string        `json:"type"` // "plan"
}

// jsonResultLine is apply -json's last line. Time, with the events' times,
// bounds the apply's window of changes (the lock is released after it).
type jsonResultLine struct {
	ApplyID string `json:"apply_id"`
	// BytesSent is per node the bytes of image streams sent (a node that
	// got nothing is absent).
	BytesSent map[string]int64 `json:"bytes_sent"`
	Done      []planner.Action `json:"done"`
	Error     string           `json:"error,omitempty"`
	PlanID    string           `json:"plan_id"`
	Result    string           `json:"result"`
	Time      time.Time        `json:"time"`
	Type      string           `json:"type"` // "result"
}

func (v *applyJSON) line(x any) {
	b, _ := json.Marshal(x)
	v.mu.Lock()
	defer v.mu.Unlock()
	fmt.Fprintf(v.s.Out, "%s\n", b)
}

func (v *applyJSON) Planned(p *planner.Plan) error {
	v.line(jsonPlanLine{Plan: p, Type: "plan"})
	return nil
}

// Confirm is never asked: -json needs -auto-approve.
func (v *applyJSON) Confirm(*planner.Plan) (bool, error) {
	return false, errors.New("-json needs -auto-approve")
}

func (v *applyJSON) Applying(*planner.Plan, time.Time) {}

func (v *applyJSON) Event(e executor.Event) { v.line(e) }

// ImageOutput: the image step's progress lines still go to stderr, plain;
// stdout gets an event per finished image step.
func (v *applyJSON) ImageOutput() executor.ImageOutput {
	return executor.ImageOutput{Progress: v.s.Err, Event: v.Event}
}

func (v *applyJSON) Result(o *executor.Outcome, err error) {
	if o.Result == "" {
		if err == nil && v.saved {
			// Not JSON: a saved plan with nothing to do has always said
			// so in words, -json or not.
			fmt.Fprintln(v.s.Out, o.Plan.SummaryLine())
		}
		return
	}
	doc := jsonResultLine{ApplyID: o.ApplyID, BytesSent: o.BytesSent, Done: o.Done, PlanID: o.Plan.ID,
		Result: o.Result, Time: o.Finished, Type: "result"}
	if o.Err != nil {
		doc.Error = v.ErrorText(o.Err)
	}
	v.line(doc)
}
