package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/berth-dev/berth/executor"
)

// progress prints apply events for people: one line per replica, updated
// in place on a terminal; plain lines otherwise. Times are shown from start.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	inPlace bool
	color   bool
	start   time.Time
	lines   int            // lines printed so far (in-place mode)
	row     map[string]int // replica key -> line number
	began   map[string]time.Time
}

func newProgress(w io.Writer, terminal, color bool, start time.Time) *progress {
	return &progress{w: w, inPlace: terminal, color: color, start: start,
		row: map[string]int{}, began: map[string]time.Time{}}
}

func (p *progress) event(e executor.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Type == executor.EvPhase {
		p.println(fmt.Sprintf("%s %s", p.stamp(e.Time), e.Message))
		return
	}
	key := fmt.Sprintf("%s.%d@%s", e.Service, e.Replica, e.Node)
	if _, ok := p.began[key]; !ok {
		p.began[key] = e.Time
	}
	text := e.Message
	switch e.Type {
	case executor.EvActionDone:
		text = fmt.Sprintf("%s done (%s)", e.Kind, e.Time.Sub(p.began[key]).Round(10*time.Millisecond))
		if p.color {
			text = ansiGreen + text + ansiReset
		}
	case executor.EvActionFailed:
		text = "failed: " + e.Message
		if p.color {
			text = ansiRed + text + ansiReset
		}
	case executor.EvUndo:
		text = "rolled back"
	}
	who := fmt.Sprintf("%s.%d on %s", e.Service, e.Replica, e.Node)
	switch {
	case e.Node == "swarm": // a Swarm service (executor/swarmexec)
		who = "service " + e.Service
	case e.Service == "" && e.Node == "":
		who = "swarm"
	}
	line := fmt.Sprintf("%s   %s: %s", p.stamp(e.Time), who, text)
	if !p.inPlace {
		p.println(line)
		return
	}
	if r, ok := p.row[key]; ok && e.Type != executor.EvUndo {
		up := p.lines - r
		fmt.Fprintf(p.w, "\x1b[%dA\r\x1b[2K%s\x1b[%dB\r", up, line, up)
		return
	}
	p.row[key] = p.lines
	p.println(line)
}

func (p *progress) stamp(t time.Time) string {
	return fmt.Sprintf("[%5.1fs]", t.Sub(p.start).Seconds())
}

func (p *progress) println(s string) {
	fmt.Fprintln(p.w, s)
	p.lines++
}
