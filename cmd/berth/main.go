// Command berth plans and applies a cluster of Docker servers described in HCL.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], StdStreams())
	stop()
	os.Exit(code)
}
