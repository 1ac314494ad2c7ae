package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/mattn/go-isatty"
)

// Version is set at build time with -ldflags "-X main.Version=..." (see
// .goreleaser.yaml); `berth version` falls back to the module version of a
// `go install ...@version` build.
var Version = defaultVersion

// defaultVersion is the version of a build that set none.
const defaultVersion = "0.1.0-dev"

// Streams are the command's input and outputs, so that Run is testable.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// InTerminal, OutTerminal and ErrTerminal say whether In, Out and Err
	// are terminals (prompts need the first; in-place progress and colour
	// on a stream need that stream's own).
	InTerminal  bool
	OutTerminal bool
	ErrTerminal bool
	// Environ is os.Environ()-style; tests set it instead of the process env.
	Environ []string
}

// StdStreams are the process's own.
func StdStreams() Streams {
	return Streams{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		InTerminal:  isatty.IsTerminal(os.Stdin.Fd()),
		OutTerminal: isatty.IsTerminal(os.Stdout.Fd()),
		ErrTerminal: isatty.IsTerminal(os.Stderr.Fd()),
		Environ:     os.Environ(),
	}
}

// Getenv looks a variable up in s.Environ.
func (s Streams) Getenv(key string) string {
	for i := len(s.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(s.Environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// command is one subcommand. run parses its own flags from args.
type command struct {
	name     string
	synopsis string
	// usage is the first line of help, after "Usage: berth ".
	usage string
	// help is the long description printed by -h, before the flags.
	help string
	// flags declares the command's flags on fs and returns the function that
	// runs it once they are parsed.
	setup func(fs *flag.FlagSet) func(ctx context.Context, s Streams, args []string) error
}

// commands is filled by each command's file in init.
var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// exitError carries an exit code other than 1 (or 1 with a message already
// printed).
type exitError struct {
	code int
	err  error // nil: nothing more to print
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exitCode returns an error that makes Run exit with code, printing err if set.
func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

// Run runs berth with args (without the program name) and returns the exit
// code. Errors map to exit codes here and only here.
func Run(ctx context.Context, args []string, s Streams) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		printUsage(s.Out)
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	if args[0] == "-v" || args[0] == "-version" || args[0] == "--version" {
		args = []string{"version"}
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(s.Err, "berth: unknown command %q\n\n", args[0])
		printUsage(s.Err)
		return 1
	}
	fs := flag.NewFlagSet("berth "+c.name, flag.ContinueOnError)
	fs.SetOutput(s.Err)
	run := c.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(s.Err, "Usage: berth %s\n\n%s\n", c.usage, strings.TrimSpace(c.help))
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintf(s.Err, "\nOptions:\n\n")
			fs.PrintDefaults()
		}
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	// Allow flags after positional arguments too (berth plan DIR -out x).
	rest, err := parseInterspersed(fs)
	if err != nil {
		fmt.Fprintf(s.Err, "berth %s: %v\n", c.name, err)
		return 1
	}
	return report(s.Err, run(ctx, s, rest))
}

// report prints a command's error on w (unless it was shown already) and
// returns the exit code it maps to.
func report(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(w, "Error: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(w, "Error: %v\n", err)
	return 1
}

// parseInterspersed parses flags that follow positional arguments.
func parseInterspersed(fs *flag.FlagSet) ([]string, error) {
	var pos []string
	args := fs.Args()
	for len(args) > 0 {
		if a := args[0]; a == "--" {
			pos = append(pos, args[1:]...)
			break
		} else if strings.HasPrefix(a, "-") && a != "-" {
			if err := fs.Parse(args); err != nil {
				return nil, err
			}
			args = fs.Args()
			continue
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, nil
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: berth <command> [options] [args]\n\n")
	fmt.Fprintf(w, "berth plans and applies a cluster of Docker servers described in HCL.\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].synopsis)
	}
	fmt.Fprintf(w, "\nRun 'berth <command> -h' for a command's options.\n")
}

// noColor reports whether colour is off: -no-color, or NO_COLOR set to a
// non-empty value (https://no-color.org: an empty NO_COLOR does not count).
func noColor(s Streams, flagSet bool) bool {
	if flagSet {
		return true
	}
	for _, e := range s.Environ {
		if v, ok := strings.CutPrefix(e, "NO_COLOR="); ok && v != "" {
			return true
		}
	}
	return !s.OutTerminal
}
