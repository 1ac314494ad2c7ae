package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is what the JSON file holds.
type Report struct {
	Date           string             `json:"date"`
	Machine        map[string]any     `json:"machine"`
	Versions       map[string]string  `json:"versions"`
	Settings       map[string]any     `json:"settings"`
	Sections       []*Section         `json:"sections"`
	SectionSeconds map[string]float64 `json:"section_seconds"`
	TotalSeconds   float64            `json:"total_seconds"`
	Errors         []string           `json:"errors,omitempty"`
}

// Section is one numbered item of the table.
type Section struct {
	ID     string    `json:"id"`
	Title  string    `json:"title"`
	Notes  []string  `json:"notes,omitempty"`
	Series []*Series `json:"series"`
}

// Series is one measured thing: a command (or a step) with its samples.
type Series struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Tool  string `json:"tool"`
	Unit  string `json:"unit"` // "s" (wall time), "ms/plan" or "ms" (request latency)
	// Compare names the berth series this peer is compared with; the ratio
	// is berth's median over this one's.
	Compare  string    `json:"compare_with,omitempty"`
	Samples  []float64 `json:"samples"`
	Warmup   []float64 `json:"warmup,omitempty"`
	Failures []string  `json:"failures,omitempty"`
	N        int       `json:"n"`
	Median   float64   `json:"median"`
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	Ratio    float64   `json:"ratio_berth_over_this,omitempty"`
	// Extra holds more per-sample figures (planner: bytes and allocs per plan).
	Extra map[string][]float64 `json:"extra,omitempty"`
	// ExtraMedian is the median of each Extra series.
	ExtraMedian map[string]float64 `json:"extra_median,omitempty"`
	Note        string             `json:"note,omitempty"`
}

func (b *bench) section(id, title string) *Section {
	for _, s := range b.report.Sections {
		if s.ID == id {
			return s
		}
	}
	s := &Section{ID: id, Title: title}
	b.report.Sections = append(b.report.Sections, s)
	return s
}

func (s *Section) note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

// series returns the section's series with id, adding it if new.
func (s *Section) series(id, label, tool, unit, compare string) *Series {
	for _, x := range s.Series {
		if x.ID == id {
			return x
		}
	}
	x := &Series{ID: id, Label: label, Tool: tool, Unit: unit, Compare: compare, Samples: []float64{}}
	s.Series = append(s.Series, x)
	return x
}

// add records one sample (or a warm-up sample, not counted).
func (x *Series) add(warm bool, seconds float64) {
	if warm {
		x.Warmup = append(x.Warmup, round3(seconds))
		return
	}
	x.Samples = append(x.Samples, round3(seconds))
}

func (x *Series) fail(warm bool, round int, msg string) {
	tag := fmt.Sprintf("round %d", round)
	if warm {
		tag = "warm-up"
	}
	x.Failures = append(x.Failures, tag+": "+oneLine(msg))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// finish computes the statistics and ratios.
func (b *bench) finish() {
	if b.report == nil {
		return
	}
	b.report.TotalSeconds = round3(time.Since(b.started).Seconds())
	b.report.Machine["loadavg_end"] = loadavg()
	byID := map[string]*Series{}
	for _, s := range b.report.Sections {
		for _, x := range s.Series {
			byID[x.ID] = x
			x.N = len(x.Samples)
			if x.N > 0 {
				x.Median = round3(median(x.Samples))
				x.Min = round3(slices.Min(x.Samples))
				x.Max = round3(slices.Max(x.Samples))
			}
			for k, v := range x.Extra {
				if x.ExtraMedian == nil {
					x.ExtraMedian = map[string]float64{}
				}
				x.ExtraMedian[k] = math.Round(median(v))
			}
		}
	}
	for _, s := range b.report.Sections {
		for _, x := range s.Series {
			if c := byID[x.Compare]; c != nil && c.N > 0 && x.N > 0 && x.Median > 0 {
				x.Ratio = math.Round(c.Median/x.Median*100) / 100
			}
		}
	}
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "s":
		if v < 1 {
			return fmt.Sprintf("%.0f ms", v*1000)
		}
		return fmt.Sprintf("%.2f s", v)
	case "ms":
		if math.Abs(v) < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	case "ms/plan":
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

func fmtRange(x *Series) string {
	if x.N == 0 {
		return "-"
	}
	lo, hi := fmtVal(x.Min, x.Unit), fmtVal(x.Max, x.Unit)
	// One unit for both ends when they share it.
	if lu, hu := lastField(lo), lastField(hi); lu == hu {
		lo = strings.TrimSuffix(lo, " "+lu)
	}
	return lo + "–" + hi
}

func lastField(s string) string {
	f := strings.Fields(s)
	return f[len(f)-1]
}

// printTable writes the human table.
func (b *bench) printTable(w io.Writer) {
	if b.report == nil {
		return
	}
	r := b.report
	fmt.Fprintf(w, "\nberth bench — %s\n", r.Date)
	fmt.Fprintf(w, "machine: %v, %v CPUs (%v), %v, kernel %v; load %v at start, %v at end\n",
		r.Machine["os"], r.Machine["cpus"], r.Machine["cpu_model"], r.Machine["memory"], r.Machine["kernel"],
		r.Machine["loadavg_start"], r.Machine["loadavg_end"])
	keys := make([]string, 0, len(r.Versions))
	for k := range r.Versions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var vs []string
	for _, k := range keys {
		vs = append(vs, k+" "+r.Versions[k])
	}
	fmt.Fprintf(w, "versions: %s\n", strings.Join(vs, "; "))
	fmt.Fprintf(w, "rounds: %v measured after 1 warm-up, interleaved; total %.0f s\n", r.Settings["rounds"], r.TotalSeconds)
	for _, s := range r.Sections {
		fmt.Fprintf(w, "\n%s\n", s.Title)
		lw := 20
		for _, x := range s.Series {
			lw = max(lw, len([]rune(x.Label)))
		}
		fmt.Fprintf(w, "  %-*s  %10s  %-19s  %3s  %10s\n", lw, "what", "median", "min–max", "n", "berth/peer")
		for _, x := range s.Series {
			med := "-"
			if x.N > 0 {
				med = fmtVal(x.Median, x.Unit)
			}
			ratio := ""
			if x.Ratio > 0 {
				ratio = fmt.Sprintf("%.2f", x.Ratio)
			} else if x.Compare != "" {
				ratio = "-"
			}
			line := fmt.Sprintf("  %-*s  %10s  %-19s  %3d  %10s", lw, x.Label, med, fmtRange(x), x.N, ratio)
			if len(x.ExtraMedian) > 0 {
				var ex []string
				for _, k := range []string{"bytes_per_plan", "allocs_per_plan"} {
					if v, ok := x.ExtraMedian[k]; ok {
						ex = append(ex, fmt.Sprintf("%s %s", humanCount(v, k), strings.TrimSuffix(k, "_per_plan")))
					}
				}
				line += "  " + strings.Join(ex, ", ")
			}
			fmt.Fprintln(w, strings.TrimRight(line, " "))
			if len(x.Failures) > 0 {
				fmt.Fprintf(w, "  %-*s  FAILED %d×: %s\n", lw, "", len(x.Failures), x.Failures[0])
			}
			if x.Note != "" {
				fmt.Fprintf(w, "  %-*s  (%s)\n", lw, "", x.Note)
			}
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  * %s\n", n)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "\nERROR %s\n", e)
	}
}

func humanCount(v float64, kind string) string {
	if strings.HasPrefix(kind, "bytes") {
		switch {
		case v >= 1<<30:
			return fmt.Sprintf("%.1f GiB", v/(1<<30))
		case v >= 1<<20:
			return fmt.Sprintf("%.1f MiB", v/(1<<20))
		default:
			return fmt.Sprintf("%.0f KiB", v/(1<<10))
		}
	}
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// newReport records the machine and the versions of everything that runs.
func newReport(b *bench) *Report {
	r := &Report{
		Date:           time.Now().Format(time.RFC3339),
		Machine:        map[string]any{},
		Versions:       map[string]string{},
		SectionSeconds: map[string]float64{},
	}
	host, _ := os.Hostname()
	r.Machine["hostname"] = host
	r.Machine["cpus"] = runtime.NumCPU()
	r.Machine["cpu_model"] = procField("/proc/cpuinfo", "model name")
	if m := procField("/proc/meminfo", "MemTotal"); m != "" {
		var kb float64
		fmt.Sscanf(m, "%f", &kb)
		r.Machine["memory"] = fmt.Sprintf("%.1f GiB RAM", kb/(1<<20))
	}
	r.Machine["kernel"] = readTrim("/proc/sys/kernel/osrelease")
	r.Machine["os"] = osRelease()
	r.Machine["loadavg_start"] = loadavg()
	r.Machine["note"] = "shared machine: only ratios measured in the same run mean much"

	out := func(name string, args ...string) string {
		o, err := exec.Command(name, args...).CombinedOutput()
		if err != nil && len(o) == 0 {
			return "unavailable: " + err.Error()
		}
		return strings.TrimSpace(string(o))
	}
	r.Versions["berth"] = strings.TrimPrefix(out(b.berth, "version"), "berth ")
	r.Versions["berth_commit"] = gitDescribe(b.opts.root)
	r.Versions["go"] = runtime.Version()
	dv := exec.Command("docker", "version", "--format", "{{.Client.Version}}|{{.Server.Version}}|{{.Server.APIVersion}}")
	dv.Env = append(os.Environ(), "DOCKER_HOST="+b.cluster.Nodes[0].DockerHost)
	if o, err := dv.Output(); err == nil {
		p := strings.Split(strings.TrimSpace(string(o)), "|")
		if len(p) == 3 {
			r.Versions["docker_client"] = p[0]
			r.Versions["docker_engine"] = p[1] + " (API " + p[2] + ")"
		}
	}
	r.Versions["docker_compose"] = out("docker-compose", "version", "--short")
	if o := out("dpkg-query", "-W", "-f", "${Version}", "python3-docker"); !strings.HasPrefix(o, "unavailable") && !strings.Contains(o, "no packages") {
		r.Versions["docker_py"] = o
	}
	r.Versions["openssh"] = out("ssh", "-V")
	return r
}

func procField(path, key string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func readTrim(path string) string {
	data, _ := os.ReadFile(path)
	return strings.TrimSpace(string(data))
}

func loadavg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func osRelease() string {
	for _, l := range strings.Split(readTrim("/etc/os-release"), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}
