package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// benchLine matches one result line of go test -bench -benchmem.
var benchLine = regexp.MustCompile(`^Benchmark(PlanFirstDeploy|PlanNoop)/nodes=(\d+)/replicas=(\d+)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op\s+([\d.]+) B/op\s+([\d.]+) allocs/op`)

// planner is item 4: planner/bench_test.go's BenchmarkPlanFirstDeploy and
// BenchmarkPlanNoop (10 services, 10 replicas per node) at 100, 1,000 and
// 10,000 nodes. -count gives one sample per round; the first is the warm-up.
func (b *bench) planner() error {
	sec := b.section("planner", "4. The pure planner, 10 replicas per node (go test -bench, planner/bench_test.go)")
	bin := filepath.Join(b.tmp, "planner.test")
	logf("planner: compiling the planner's tests (not timed)")
	r := b.exec(b.ctx, cmdSpec{name: "go", args: []string{"test", "-c", "-o", bin, "./planner"}, dir: b.opts.root, timeout: 5 * time.Minute})
	if r.err != nil {
		return fmt.Errorf("go test -c ./planner: %s", r.failure())
	}
	count := b.opts.rounds + 1
	args := []string{"-test.run", "^$", "-test.bench", "^BenchmarkPlan(FirstDeploy|Noop)$", "-test.benchmem",
		"-test.benchtime", "200ms", "-test.count", strconv.Itoa(count)}
	sec.note("go test ./planner -run '^$' -bench '^BenchmarkPlan(FirstDeploy|Noop)$' -benchmem -benchtime 200ms -count %d; each sample is one benchmark run's ns/op (a mean over its iterations: at 10,000 nodes a single plan); the first run of each size is the warm-up", count)
	sec.note("input: 10 services over 3 zones, spread + constraint, 256 MiB each, half with an auto-assigned published port; 'no-op' plans against the state the first plan would leave")
	r = b.exec(b.ctx, cmdSpec{name: bin, args: args, dir: filepath.Join(b.opts.root, "planner"), timeout: 8 * time.Minute, log: filepath.Join(b.tmp, "planner.log")})
	if r.err != nil {
		return fmt.Errorf("planner benchmarks: %s", r.failure())
	}
	seen := map[string]int{}
	for _, l := range strings.Split(r.out, "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		kind := "first deploy"
		if m[1] == "PlanNoop" {
			kind = "no-op"
		}
		nodes, _ := strconv.Atoi(m[2])
		reps, _ := strconv.Atoi(m[3])
		id := fmt.Sprintf("planner/%s/%d", strings.ReplaceAll(kind, " ", "-"), nodes)
		x := sec.series(id, fmt.Sprintf("%s plan, %s nodes (%s replicas)", kind, commas(nodes), commas(reps)), "berth", "ms/plan", "")
		ns, _ := strconv.ParseFloat(m[5], 64)
		bytes, _ := strconv.ParseFloat(m[6], 64)
		allocs, _ := strconv.ParseFloat(m[7], 64)
		warm := seen[id] == 0
		seen[id]++
		if warm {
			x.Warmup = append(x.Warmup, round3(ns/1e6))
			continue
		}
		x.Samples = append(x.Samples, round3(ns/1e6))
		if x.Extra == nil {
			x.Extra = map[string][]float64{}
		}
		x.Extra["bytes_per_plan"] = append(x.Extra["bytes_per_plan"], bytes)
		x.Extra["allocs_per_plan"] = append(x.Extra["allocs_per_plan"], allocs)
	}
	if len(seen) == 0 {
		return fmt.Errorf("no benchmark lines in the output: %s", lastLines(r.out, 5))
	}
	// Growth per 10x nodes, from the medians.
	for _, kind := range []string{"first-deploy", "no-op"} {
		var parts []string
		prev := 0.0
		for _, n := range []int{100, 1000, 10000} {
			x := b.findSeries(fmt.Sprintf("planner/%s/%d", kind, n))
			if x == nil || len(x.Samples) == 0 {
				continue
			}
			m := median(x.Samples)
			if prev > 0 {
				parts = append(parts, fmt.Sprintf("x%.1f at %s nodes", m/prev, commas(n)))
			}
			prev = m
		}
		if len(parts) > 0 {
			sec.note("%s: time per plan grows %s (10x the nodes each step; linear would be x10)", kind, strings.Join(parts, ", "))
		}
	}
	return nil
}

func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
