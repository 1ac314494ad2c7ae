package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
)

func init() {
	register(&command{
		name:     "version",
		synopsis: "Print berth's version",
		usage:    "version",
		help:     "Prints berth's version and the Go version it was built with.",
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			return func(ctx context.Context, s Streams, args []string) error {
				fmt.Fprintf(s.Out, "berth %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	})
}

// usageErr is an error in how a command was called.
func usageErr(format string, a ...any) error {
	return exitCode(1, fmt.Errorf(format, a...))
}
