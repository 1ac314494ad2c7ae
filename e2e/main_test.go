package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// SummaryFileEnv names a file that TestMain also writes the summary table
// to (replacing it). scripts/test sets it and prints the file at the end of
// its run: go test -v output reaches its terminal only for a failed package.
const SummaryFileEnv = "BERTH_RELIABILITY_SUMMARY"

// TestMain runs the package's tests and then prints the reliability suite's
// summary table (scenario, runs, passed, figures), also when tests failed,
// to stdout and to $BERTH_RELIABILITY_SUMMARY when set.
func TestMain(m *testing.M) {
	code := m.Run()
	writeSummary(os.Stdout)
	if p := os.Getenv(SummaryFileEnv); p != "" {
		if err := writeSummaryFile(p); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: write the summary table to %s: %v\n", p, err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// writeSummaryFile writes the summary table to path (nothing when no
// scenario ran: the file is then left out, not left stale).
func writeSummaryFile(path string) error {
	var b strings.Builder
	writeSummary(&b)
	if b.Len() == 0 {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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

// The table reaches the file scripts/test prints: with every scenario, a
// failed run named, and no file at all when nothing ran.
func TestSummaryFile(t *testing.T) {
	summary.Lock()
	saved := summary.m
	summary.m = map[string]*scenarioStats{}
	summary.Unlock()
	defer func() {
		summary.Lock()
		summary.m = saved
		summary.Unlock()
	}()
	path := filepath.Join(t.TempDir(), "summary.txt")
	os.WriteFile(path, []byte("stale"), 0o644)
	if err := writeSummaryFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("no scenario ran, yet %s is there (%v)", path, err)
	}
	start := time.Now()
	scenarioAdd(scSoak, "TestReliabilitySoak", true, start)
	scenarioAdd(scDrift, "TestReliabilityDrift/a", true, start)
	scenarioAdd(scDrift, "TestReliabilityDrift/b", false, start)
	scenarioFigure(scDrift, "%d drifts", 4)
	if err := writeSummaryFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"=== berth reliability suite (issue 8) ===",
		fmt.Sprintf("%-52s %5d %7d", scSoak, 1, 1),
		fmt.Sprintf("%-52s %5d %7d", scDrift, 2, 1),
		"4 drifts",
		"    FAILED: TestReliabilityDrift/b\n",
		scKill + " ", // every scenario has a line, run or not
		fmt.Sprintf("%-52s %5d %7d\n", "total", 3, 2),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary file lacks %q:\n%s", want, got)
		}
	}
}
