package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tracePlan runs 'berth plan DIR' runs times with BERTH_TRACE=1 (see
// internal/trace: berth itself prints each phase's start and duration on
// stderr) and prints, per phase, the median start (ms since the process's
// package init began) and duration. Node names are folded into NODE, so a
// per-node phase is the median over nodes and runs. The process's wall
// time (fork to exit, as the bench times it) is the first line. It shows
// where a plan's time goes in the real binary, not in a replay.
func tracePlan(ctx context.Context, w io.Writer, berthBin, dir string, runs, parallelism int) error {
	type span struct{ start, dur float64 }
	phases := map[string][]span{}
	var walls []float64
	for i := 0; i < runs; i++ {
		cmd := exec.CommandContext(ctx, berthBin, "plan", "-parallelism", strconv.Itoa(parallelism), dir)
		cmd.Env = append(os.Environ(), "BERTH_TRACE=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("berth plan %s: %v: %s", dir, err, lastLines(stderr.String(), 3))
		}
		walls = append(walls, ms(time.Since(t0)))
		for _, l := range strings.Split(stderr.String(), "\n") {
			m := traceLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			start, _ := strconv.ParseFloat(m[1], 64)
			dur, _ := strconv.ParseFloat(m[2], 64)
			name := nodeName.ReplaceAllString(m[3], "NODE")
			phases[name] = append(phases[name], span{start, dur})
		}
	}
	if len(phases) == 0 {
		return fmt.Errorf("berth plan printed no BERTH_TRACE lines (a berth without internal/trace?)")
	}
	med := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	type row struct {
		name       string
		start, dur float64
		n          int
	}
	var rows []row
	for name, ss := range phases {
		var st, du []float64
		for _, s := range ss {
			st = append(st, s.start)
			du = append(du, s.dur)
		}
		rows = append(rows, row{name, med(st), med(du), len(ss)})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if a.start != b.start {
			if a.start < b.start {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	fmt.Fprintf(w, "berth plan %s with BERTH_TRACE=1, median of %d runs (start: ms since package init began; per-node phases: median over nodes and runs)\n", filepath.Base(dir), runs)
	fmt.Fprintf(w, "  %-52s %8s %8.1f ms\n", "process wall time (fork to exit)", "", med(walls))
	for _, r := range rows {
		fmt.Fprintf(w, "  %-52s %6.1f + %6.1f ms   (n %d)\n", r.name, r.start, r.dur, r.n)
	}
	return nil
}

var (
	traceLine = regexp.MustCompile(`^berth trace:\s+([0-9.]+) ms \+\s+([0-9.]+) ms  (.*)$`)
	// Node names as the test cluster and the fan-out's endpoints have them.
	nodeName = regexp.MustCompile(`\b(node[0-9]+|n[0-9]{3})\b`)
)

// traceNote runs tracePlan and adds its lines to the section's notes.
func (b *bench) traceNote(sec *Section, dir string, runs, parallelism int) {
	var buf strings.Builder
	if err := tracePlan(b.ctx, &buf, b.berth, dir, runs, parallelism); err != nil {
		sec.note("trace of berth plan failed: %v", err)
		return
	}
	for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		sec.Notes = append(sec.Notes, "trace: "+strings.TrimSpace(l))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
