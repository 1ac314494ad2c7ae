package main

import (
	"math"
	"strings"
	"testing"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	for _, c := range []struct {
		v    []float64
		p    float64
		want float64
	}{
		{hundred, 50, 50},
		{hundred, 99, 99},
		{hundred, 99.9, 100},
		{hundred, 100, 100},
		{hundred, 1, 1},
		{hundred, 0.5, 1},
		{[]float64{3, 1, 2}, 50, 2},
		{[]float64{4, 1, 3, 2}, 50, 2}, // nearest rank: no interpolation
		{[]float64{4, 1, 3, 2}, 51, 3},
		{[]float64{7}, 99, 7},
	} {
		if got := percentile(c.v, c.p); got != c.want {
			t.Errorf("percentile(%v, %g) = %g, want %g", c.v, c.p, got, c.want)
		}
	}
	for _, p := range []float64{0, -1, 101} {
		if got := percentile(hundred, p); !math.IsNaN(got) {
			t.Errorf("percentile(_, %g) = %g, want NaN", p, got)
		}
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("percentile(nil) = %g, want NaN", got)
	}
	if hundred[0] != 100 {
		t.Errorf("percentile sorted its argument")
	}
}

func TestLoadCounts(t *testing.T) {
	a := loadCount{OK: map[string]int{"node1": 10, "node2": 5}, Failed: map[string]int{"node2": 2}, Errors: []string{"12:00:00.000 node2: connection refused"}}
	b := loadCount{OK: map[string]int{"node1": 7}, Failed: map[string]int{}}
	if total, failed := a.totals(); total != 17 || failed != 2 {
		t.Errorf("totals = %d, %d; want 17, 2", total, failed)
	}
	note := loadNote([]loadCount{b, a})
	for _, want := range []string{"2 of 24 requests failed over 2 rounds", "per round: 0/7, 2/17", "first failure: 12:00:00.000 node2: connection refused"} {
		if !strings.Contains(note, want) {
			t.Errorf("loadNote = %q, want it to contain %q", note, want)
		}
	}
	if loadNote(nil) != "" {
		t.Errorf("loadNote(nil) = %q", loadNote(nil))
	}
}

func TestFmtValMs(t *testing.T) {
	for v, want := range map[float64]string{0.412: "0.41 ms", 12.34: "12.3 ms", -0.05: "-0.05 ms"} {
		if got := fmtVal(v, "ms"); got != want {
			t.Errorf("fmtVal(%g, ms) = %q, want %q", v, got, want)
		}
	}
}
