package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/berth-dev/berth/config"
)

func init() {
	register(&command{
		name:     "fmt",
		synopsis: "Rewrite configuration files in canonical form",
		usage:    "fmt [options] [DIR|FILE...]",
		help: `
Rewrites every *.hcl file (configuration and *.vars.hcl variable files) in
the given directories and files in canonical form, and lists the files it
changed. Directories are walked recursively, like gofmt, skipping hidden
directories and testdata; -recursive=false formats only the directory named.
With no argument, formats the current directory. "-" reads standard input and
writes the result to standard output.

Exit status: 0 on success; 1 when a file has a syntax error, or with -check
when a file is not in canonical form.`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			check := fs.Bool("check", false, "Change nothing; list the files that are not formatted and exit 1 if there are any.")
			diff := fs.Bool("diff", false, "Print a unified diff of the changes.")
			recursive := fs.Bool("recursive", true, "Also format the files in subdirectories.")
			noColorFlag := fs.Bool("no-color", false, "Do not colour the output (also: NO_COLOR).")
			return func(ctx context.Context, s Streams, args []string) error {
				f := &formatter{s: s, check: *check, diff: *diff, color: !noColor(s, *noColorFlag), errColor: errColor(s, *noColorFlag)}
				if len(args) == 0 {
					args = []string{"."}
				}
				for _, arg := range args {
					if arg == "-" {
						f.stdin()
						continue
					}
					files, err := hclFiles(arg, *recursive)
					if err != nil {
						fmt.Fprintf(s.Err, "Error: %v\n", err)
						f.failed = true
						continue
					}
					for _, file := range files {
						f.file(file)
					}
				}
				if f.failed || (f.check && f.unformatted > 0) {
					return exitCode(1, nil)
				}
				return nil
			}
		},
	})
}

// formatter formats files and remembers what happened.
type formatter struct {
	s           Streams
	check, diff bool
	color       bool // for the diff, on stdout
	errColor    bool // for diagnostics, on stderr
	failed      bool // a file could not be read, parsed or written
	unformatted int
}

// hclFiles lists the *.hcl files a fmt argument names: the file itself, or
// the *.hcl files in a directory (and below it when recursive, skipping
// hidden directories and testdata).
func hclFiles(arg string, recursive bool) ([]string, error) {
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{arg}, nil
	}
	var files []string
	err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path == arg {
				return nil
			}
			if !recursive || strings.HasPrefix(name, ".") || name == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && strings.HasSuffix(name, ".hcl") && !strings.HasPrefix(name, ".") {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// format returns src in canonical form, or diagnostics when it does not parse.
func (f *formatter) format(name string, src []byte) ([]byte, bool) {
	if d := config.CheckNesting(src, name, false); d != nil {
		writeDiags(f.s, nil, hcl.Diagnostics{d}, f.errColor)
		f.failed = true
		return nil, false
	}
	file, diags := hclsyntax.ParseConfig(src, name, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		writeDiags(f.s, map[string]*hcl.File{name: file}, diags, f.errColor)
		f.failed = true
		return nil, false
	}
	return hclwrite.Format(src), true
}

func (f *formatter) file(path string) {
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(f.s.Err, "Error: read %s: %v\n", path, err)
		f.failed = true
		return
	}
	out, ok := f.format(path, src)
	if !ok || bytes.Equal(src, out) {
		return
	}
	f.unformatted++
	fmt.Fprintln(f.s.Out, path)
	if f.diff {
		writeUnifiedDiff(f.s.Out, path, src, out)
	}
	if f.check {
		return
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := os.WriteFile(path, out, mode); err != nil {
		fmt.Fprintf(f.s.Err, "Error: write %s: %v\n", path, err)
		f.failed = true
	}
}

func (f *formatter) stdin() {
	in := f.s.In
	if in == nil {
		in = strings.NewReader("")
	}
	src, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintf(f.s.Err, "Error: read standard input: %v\n", err)
		f.failed = true
		return
	}
	out, ok := f.format("<stdin>", src)
	if !ok {
		return
	}
	if !bytes.Equal(src, out) {
		f.unformatted++
	}
	switch {
	case f.diff:
		writeUnifiedDiff(f.s.Out, "<stdin>", src, out)
	case !f.check:
		f.s.Out.Write(out)
	}
}

// writeUnifiedDiff prints a unified diff (three lines of context) between
// two versions of a file.
func writeUnifiedDiff(w io.Writer, name string, a, b []byte) {
	x, y := splitLines(a), splitLines(b)
	ops := diffLines(x, y)
	rel := strings.TrimPrefix(filepath.ToSlash(name), "/")
	fmt.Fprintf(w, "--- old/%s\n+++ new/%s\n", rel, rel)
	const context = 3
	// Group the edit script into hunks.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-context)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			// A run of equal lines: does another change follow within reach?
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(len(ops), end+context)
				break
			}
			end = run
		}
		ax, ay := ops[start].ax, ops[start].ay
		var na, nb int
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				na++
			}
			if op.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(ax, na), hunkRange(ay, nb))
		for _, op := range ops[start:end] {
			line := op.text
			fmt.Fprintf(w, "%c%s", op.kind, line)
			if !strings.HasSuffix(line, "\n") {
				fmt.Fprintf(w, "\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i+1]))
		b = b[i+1:]
	}
	return out
}

// diffOp is one line of an edit script: ' ' keep, '-' delete, '+' insert;
// ax and ay are the line indexes in the old and new file before it.
type diffOp struct {
	kind   byte
	text   string
	ax, ay int
}

// diffLines computes an edit script by longest common subsequence. Files
// are small; past a size where the table gets big, it replaces everything.
func diffLines(x, y []string) []diffOp {
	n, m := len(x), len(y)
	var ops []diffOp
	if n*m > 4_000_000 {
		for i, l := range x {
			ops = append(ops, diffOp{'-', l, i, 0})
		}
		for j, l := range y {
			ops = append(ops, diffOp{'+', l, n, j})
		}
		return ops
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			ops = append(ops, diffOp{' ', x[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, diffOp{'-', x[i], i, j})
			i++
		default:
			ops = append(ops, diffOp{'+', y[j], i, j})
			j++
		}
	}
	return ops
}
