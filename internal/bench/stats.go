package main

import (
	"math"
	"slices"
)

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of v: the
// smallest value that at least p% of the values are at or below. NaN for
// no values. v is not modified.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 || p <= 0 || p > 100 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// loadCount is what a load generator saw, per target.
type loadCount struct {
	OK     map[string]int
	Failed map[string]int
	Errors []string // the first few failures, with time and target
}

// totals sums the counts over the targets.
func (c loadCount) totals() (total, failed int) {
	for _, n := range c.OK {
		total += n
	}
	for _, n := range c.Failed {
		total += n
		failed += n
	}
	return total, failed
}
