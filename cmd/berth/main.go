// Command berth plans and applies a cluster of Docker servers described in HCL.
//
// This package owns the command line only: flags, the views (human and JSON,
// one per command, colour from the data) and the mapping of an operation's
// outcome to an exit code. It must not do a workflow step itself: opening
// sessions, locking, gathering, planning and applying go through
// executor.Run.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-dev/berth/internal/trace"
)

func main() {
	trace.Mark("main (package init done)")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], StdStreams())
	stop()
	trace.Mark("exit")
	os.Exit(code)
}
