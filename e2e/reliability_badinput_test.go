package e2e

// Scenario 10: bad input at scale, through the berth binary. It needs no
// cluster (a configuration that does not load never reaches the network),
// so it runs without BERTH_E2E too.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testcluster"
)

// mutationsPerExample: four examples make 200 mutated configurations.
const mutationsPerExample = 50

var (
	diagHead   = regexp.MustCompile(`(?m)^(?:(\S+?):(\d+):(\d+): )?(error|warning): (.*)$`)
	crashTrace = regexp.MustCompile(`panic|goroutine \d|fatal error|runtime error|Internal error|\.go:\d+|\[signal `)
)

// badResult is one berth run on bad input.
type badResult struct {
	code     int
	out, err string
}

func runBad(bin string, env []string, args ...string) badResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "HOME="+os.TempDir()), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := badResult{out: o.String(), err: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code, r.err = -2, err.Error()
	}
	if ctx.Err() != nil {
		r.code = -3
	}
	return r
}

// checkBad returns what is wrong with a run on bad input: a crash, an exit
// code other than 0 or 1 (1 when mustFail), or an error without a
// FILE:LINE:COL position (unless its summary is in unplaced).
func checkBad(r badResult, mustFail bool, unplaced map[string]bool) error {
	all := r.out + r.err
	switch {
	case r.code == -3:
		return fmt.Errorf("timed out")
	case crashTrace.MatchString(all):
		return fmt.Errorf("exit %d with a crash or stack trace: %s", r.code, crashTrace.FindString(all))
	case r.code != 0 && r.code != 1:
		return fmt.Errorf("exit %d", r.code)
	case mustFail && r.code != 1:
		return fmt.Errorf("exit %d, want 1", r.code)
	case r.code == 0:
		return nil
	}
	errs := 0
	for _, m := range diagHead.FindAllStringSubmatch(r.err, -1) {
		if m[4] != "error" {
			continue
		}
		errs++
		if m[1] == "" && !unplaced[m[5]] {
			return fmt.Errorf("an error without a position: %q", m[0])
		}
	}
	if errs == 0 {
		return fmt.Errorf("exit 1 without any error diagnostic:\n%s", r.err)
	}
	for _, l := range strings.Split(r.err, "\n") {
		if strings.HasPrefix(l, "Error: ") {
			return fmt.Errorf("an error that is not a diagnostic: %q", l)
		}
	}
	return nil
}

// goldenCase reads an invalid case's args (as config's golden test does)
// and expected diagnostics.
func goldenCase(t *testing.T, dir string) (args, env, want []string, unplaced map[string]bool) {
	t.Helper()
	if f, err := os.Open(filepath.Join(dir, "args")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			kind, rest, _ := strings.Cut(line, " ")
			switch kind {
			case "-var":
				args = append(args, "-var", rest)
			case "-var-file":
				args = append(args, "-var-file", filepath.Join(dir, rest))
			case "env":
				env = append(env, rest)
			}
		}
		f.Close()
	}
	b, err := os.ReadFile(filepath.Join(dir, "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	unplaced = map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		want = append(want, l)
		if rest, ok := strings.CutPrefix(l, "-: error: "); ok {
			unplaced[rest] = true
		}
	}
	sort.Strings(want)
	return args, env, want, unplaced
}

// goldenLinesOf renders a run's diagnostics as config's expected.txt does:
// FILE:LINE: severity: summary, FILE relative to dir, "-" when unplaced.
func goldenLinesOf(dir, stderr string) []string {
	var out []string
	for _, m := range diagHead.FindAllStringSubmatch(stderr, -1) {
		if m[1] == "" {
			out = append(out, "-: "+m[4]+": "+m[5])
			continue
		}
		rel, err := filepath.Rel(dir, m[1])
		if err != nil {
			rel = m[1]
		}
		out = append(out, rel+":"+m[2]+": "+m[4]+": "+m[5])
	}
	sort.Strings(out)
	return out
}

func TestReliabilityBadInput(t *testing.T) {
	bin := testcluster.BuildBerth(t)
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		name string
		run  func() error
	}
	var jobs []job

	// Every invalid case: validate and plan exit 1, every error placed;
	// plan (which loads as strictly as config's golden test) reports
	// exactly the golden diagnostics.
	invalid, _ := filepath.Glob(filepath.Join(root, "config", "testdata", "invalid", "*"))
	if len(invalid) < 70 {
		t.Fatalf("found only %d invalid cases", len(invalid))
	}
	for _, dir := range invalid {
		args, env, want, unplaced := goldenCase(t, dir)
		jobs = append(jobs, job{"invalid/" + filepath.Base(dir), func() error {
			v := runBad(bin, env, append(append([]string{"validate"}, args...), dir)...)
			if err := checkBad(v, true, unplaced); err != nil {
				return fmt.Errorf("validate: %w", err)
			}
			p := runBad(bin, env, append(append([]string{"plan"}, args...), dir)...)
			if err := checkBad(p, true, unplaced); err != nil {
				return fmt.Errorf("plan: %w", err)
			}
			if got := goldenLinesOf(dir, p.err); strings.Join(got, "\n") != strings.Join(want, "\n") {
				return fmt.Errorf("plan's diagnostics differ from expected.txt:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			return nil
		}})
	}

	// Mutated copies of the examples.
	seed := int64(20261127)
	if s := os.Getenv("BERTH_BADINPUT_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("mutation seed %d (set BERTH_BADINPUT_SEED to replay another)", seed)
	rng := rand.New(rand.NewSource(seed))
	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*"))
	if len(examples) < 4 {
		t.Fatalf("found only %d examples", len(examples))
	}
	work := t.TempDir()
	var validAfter, planned int
	var mu sync.Mutex
	for _, ex := range examples {
		for i := 0; i < mutationsPerExample; i++ {
			kind := mutationKinds[i%len(mutationKinds)]
			dir := filepath.Join(work, fmt.Sprintf("%s-%02d-%s", filepath.Base(ex), i, kind.name))
			file := copyTree(t, ex, dir, rng)
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, kind.mutate(rng, src), 0o644); err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, job{"mutated/" + filepath.Base(dir) + "/" + filepath.Base(file), func() error {
				v := runBad(bin, nil, "validate", dir)
				if err := checkBad(v, false, nil); err != nil {
					return fmt.Errorf("validate: %w", err)
				}
				if v.code == 0 {
					// Still valid: planning it would reach for the nodes.
					mu.Lock()
					validAfter++
					mu.Unlock()
					return nil
				}
				mu.Lock()
				planned++
				mu.Unlock()
				p := runBad(bin, nil, "plan", dir)
				if err := checkBad(p, true, nil); err != nil {
					return fmt.Errorf("plan: %w", err)
				}
				return nil
			}})
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	ch := make(chan job)
	var failures []string
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				t0 := time.Now()
				err := j.run()
				scenarioAdd(scBadInput, j.name, err == nil, t0)
				if err != nil {
					mu.Lock()
					failures = append(failures, j.name+": "+err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	sort.Strings(failures)
	for _, f := range failures {
		t.Error(f)
	}
	n := len(jobs) - len(invalid)
	scenarioFigure(scBadInput, "%d invalid dirs + %d mutations (%d still valid), %d berth runs in %.1fs",
		len(invalid), n, validAfter, 2*len(invalid)+n+planned, time.Since(start).Seconds())
}

// copyTree copies dir to dst and returns the path of one configuration
// file in dst, chosen at random, to mutate.
func copyTree(t *testing.T, src, dst string, rng *rand.Rand) string {
	t.Helper()
	var hcl []string
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if filepath.Dir(rel) == "." && strings.HasSuffix(rel, ".hcl") && !strings.HasSuffix(rel, ".vars.hcl") {
			hcl = append(hcl, target)
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(hcl)
	return hcl[rng.Intn(len(hcl))]
}

type mutation struct {
	name   string
	mutate func(rng *rand.Rand, src []byte) []byte
}

var (
	valueRE  = regexp.MustCompile(`=[ \t]*("[^"\n]*"|-?[0-9]+(\.[0-9]+)?|true|false|null|\[[^\]\n]*\]|\{[^}\n]*\})[ \t]*\n`)
	numberRE = regexp.MustCompile(`\b[0-9]+\b`)
	openRE   = regexp.MustCompile(`\{[ \t]*\n`)
)

// pick returns one match of re in src at random, or nil.
func pick(rng *rand.Rand, re *regexp.Regexp, src []byte, group int) []int {
	all := re.FindAllSubmatchIndex(src, -1)
	if len(all) == 0 {
		return nil
	}
	m := all[rng.Intn(len(all))]
	return m[2*group : 2*group+2]
}

func splice(src []byte, at []int, with string) []byte {
	out := append([]byte(nil), src[:at[0]]...)
	out = append(out, with...)
	return append(out, src[at[1]:]...)
}

func insertAt(src []byte, pos int, with string) []byte { return splice(src, []int{pos, pos}, with) }

var mutationKinds = []mutation{
	{"truncated", func(rng *rand.Rand, src []byte) []byte { return src[:rng.Intn(len(src))] }},
	{"wrong-type", func(rng *rand.Rand, src []byte) []byte {
		vals := []string{`42`, `"text"`, `true`, `[1, "a", {}]`, `{ a = 1 }`, `null`, `-1`, `1.5`, `["x"]`, `var.nope`, `upper(1)`}
		if at := pick(rng, valueRE, src, 1); at != nil {
			return splice(src, at, vals[rng.Intn(len(vals))])
		}
		return append(src, "\nservice \"x\" { image = 42 }\n"...)
	}},
	{"unknown-field", func(rng *rand.Rand, src []byte) []byte {
		ins := []string{"  bogus_attribute = 1\n", "  frobnicate {\n    x = 1\n  }\n", "  imagee = \"typo\"\n", "  labels \"x\" {}\n"}
		if at := pick(rng, openRE, src, 0); at != nil {
			return insertAt(src, at[1], ins[rng.Intn(len(ins))])
		}
		return append(src, "\nunknown_top = 1\n"...)
	}},
	{"huge-number", func(rng *rand.Rand, src []byte) []byte {
		nums := []string{"99999999999999999999999999999999999999", "1e308", "1e999", "-9223372036854775809", "18446744073709551616", "0.0000000000000000000000001", "1e-400"}
		if at := pick(rng, numberRE, src, 0); at != nil {
			return splice(src, at, nums[rng.Intn(len(nums))])
		}
		return append(src, "\nlocals {\n  n = 1e999\n}\n"...)
	}},
	{"non-utf8", func(rng *rand.Rand, src []byte) []byte {
		bad := []string{"\xff", "\xfe\xff", "\xc3\x28", "\x80\x80", "\xed\xa0\x80", "\x00", "\xef\xbb\xbf\xff"}
		// Inside a string half of the time.
		if rng.Intn(2) == 0 {
			if at := pick(rng, regexp.MustCompile(`"([^"\n]+)"`), src, 1); at != nil {
				return insertAt(src, at[0]+rng.Intn(at[1]-at[0]+1), bad[rng.Intn(len(bad))])
			}
		}
		return insertAt(src, rng.Intn(len(src)+1), bad[rng.Intn(len(bad))])
	}},
	{"deep-nesting", func(rng *rand.Rand, src []byte) []byte {
		depth := []int{100, 300, 5000, 100000}[rng.Intn(4)]
		open, close := []string{"[", "(", "{a = "}, []string{"]", ")", "}"}
		k := rng.Intn(3)
		deep := strings.Repeat(open[k], depth) + "1" + strings.Repeat(close[k], depth)
		if rng.Intn(4) == 0 {
			deep = strings.Repeat("!", depth) + "true"
		}
		if at := pick(rng, valueRE, src, 1); at != nil {
			return splice(src, at, deep)
		}
		return append(src, "\nlocals {\n  d = "+deep+"\n}\n"...)
	}},
	{"byte-flips", func(rng *rand.Rand, src []byte) []byte {
		out := append([]byte(nil), src...)
		for i := 0; i < 1+rng.Intn(5) && len(out) > 0; i++ {
			out[rng.Intn(len(out))] = byte(rng.Intn(256))
		}
		return out
	}},
	{"unbalanced", func(rng *rand.Rand, src []byte) []byte {
		toks := []string{"}", "{", "]", "[", "(", ")", `"`, "${", "%{", "<<EOT\n", "/*", "*/", "=", ","}
		return insertAt(src, rng.Intn(len(src)+1), toks[rng.Intn(len(toks))])
	}},
	{"lines-shuffled", func(rng *rand.Rand, src []byte) []byte {
		lines := strings.Split(string(src), "\n")
		for i := 0; i < 3; i++ {
			a, b := rng.Intn(len(lines)), rng.Intn(len(lines))
			lines[a], lines[b] = lines[b], lines[a]
		}
		if len(lines) > 1 && rng.Intn(2) == 0 {
			j := rng.Intn(len(lines))
			lines = append(lines[:j], lines[j+1:]...)
		}
		return []byte(strings.Join(lines, "\n"))
	}},
	{"duplicated-block", func(rng *rand.Rand, src []byte) []byte {
		// The whole file twice: every block and attribute declared again.
		return append(append(append([]byte(nil), src...), '\n'), src...)
	}},
	{"huge-string", func(rng *rand.Rand, src []byte) []byte {
		big := `"` + strings.Repeat("x", 1<<20) + `"`
		if at := pick(rng, valueRE, src, 1); at != nil {
			return splice(src, at, big)
		}
		return append(src, "\nlocals {\n  s = "+big+"\n}\n"...)
	}},
	{"empty-or-garbage", func(rng *rand.Rand, src []byte) []byte {
		switch rng.Intn(4) {
		case 0:
			return nil
		case 1:
			return []byte("\xef\xbb\xbf")
		case 2:
			b := make([]byte, 200)
			rng.Read(b)
			return b
		}
		return []byte(`{"service": {"web": {"image": "x"}}}`)
	}},
}
