package e2e

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain runs the package's tests and then prints the reliability suite's
// summary table (scenario, runs, passed, figures), also when tests failed.
func TestMain(m *testing.M) {
	code := m.Run()
	writeSummary(os.Stdout)
	os.Exit(code)
}

// The reliability scenarios of issue 8, in the order of the summary table.
const (
	scKill       = "1 SIGKILL at every step boundary"
	scInterrupt  = "2 SIGINT at every step boundary"
	scBlackhole  = "3 node blackholed mid-apply"
	scThrottle   = "4 sshd MaxStartups 1 / MaxSessions 1"
	scConcurrent = "5 concurrent applies (2 and 5)"
	scHostKey    = "6 swapped host key"
	scSecret     = "7 canary secret never shown"
	scDrift      = "8 drift (deleted, stopped, relabelled, foreign port)"
	scImageGone  = "9 image of an old container removed"
	scBadInput   = "10 bad input (invalid dirs + mutations)"
	scSoak       = "11 soak: 50 applies v1/v2"
)

var scenarioOrder = []string{scKill, scInterrupt, scBlackhole, scThrottle, scConcurrent, scHostKey, scSecret,
	scDrift, scImageGone, scBadInput, scSoak}

type scenarioStats struct {
	runs, passed int
	failed       []string // names of the failed runs
	figures      []string
	first, last  time.Time // wall-clock span of the runs
}

var summary = struct {
	sync.Mutex
	m map[string]*scenarioStats
}{m: map[string]*scenarioStats{}}

func stats(scenario string) *scenarioStats {
	st := summary.m[scenario]
	if st == nil {
		st = &scenarioStats{}
		summary.m[scenario] = st
	}
	return st
}

// scenarioRun counts t as one run of scenario: passed unless t fails. A
// skipped t is not counted.
func scenarioRun(t *testing.T, scenario string) {
	t.Helper()
	start := time.Now()
	t.Cleanup(func() {
		if !t.Skipped() {
			scenarioAdd(scenario, t.Name(), !t.Failed(), start)
		}
	})
}

// scenarioAdd counts one run of scenario, named name, that passed or not;
// for scenarios that check many inputs inside one test.
func scenarioAdd(scenario, name string, passed bool, start time.Time) {
	summary.Lock()
	defer summary.Unlock()
	st := stats(scenario)
	st.runs++
	if st.first.IsZero() || start.Before(st.first) {
		st.first = start
	}
	if now := time.Now(); now.After(st.last) {
		st.last = now
	}
	if passed {
		st.passed++
	} else {
		st.failed = append(st.failed, name)
	}
}

// scenarioFigure adds a measured figure (a timing bound, a count) to the
// scenario's line in the summary.
func scenarioFigure(scenario, format string, args ...any) {
	summary.Lock()
	defer summary.Unlock()
	st := stats(scenario)
	st.figures = append(st.figures, fmt.Sprintf(format, args...))
}

func writeSummary(w io.Writer) {
	summary.Lock()
	defer summary.Unlock()
	if len(summary.m) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("\n=== berth reliability suite (issue 8) ===\n")
	fmt.Fprintf(&b, "%-52s %5s %7s %8s  %s\n", "scenario", "runs", "passed", "wall", "figures")
	names := append([]string(nil), scenarioOrder...)
	var extra []string
	for n := range summary.m {
		if !contains(scenarioOrder, n) {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	names = append(names, extra...)
	totalRuns, totalPassed := 0, 0
	for _, n := range names {
		st := summary.m[n]
		if st == nil {
			fmt.Fprintf(&b, "%-52s %5s %7s %8s  %s\n", n, "-", "-", "-", "not run (skipped or filtered out)")
			continue
		}
		totalRuns += st.runs
		totalPassed += st.passed
		wall := "-"
		if st.runs > 0 {
			wall = fmt.Sprintf("%.1fs", st.last.Sub(st.first).Seconds())
		}
		fmt.Fprintf(&b, "%-52s %5d %7d %8s  %s\n", n, st.runs, st.passed, wall, strings.Join(st.figures, "; "))
		for _, f := range st.failed {
			fmt.Fprintf(&b, "    FAILED: %s\n", f)
		}
	}
	fmt.Fprintf(&b, "%-52s %5d %7d\n", "total", totalRuns, totalPassed)
	io.WriteString(w, b.String())
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
