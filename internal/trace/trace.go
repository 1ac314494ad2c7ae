// Package trace times the phases of one berth command for people who want
// to know where its wall time goes. It is off unless the environment
// variable BERTH_TRACE is set (to anything but "" or "0"); then every span
// prints one line on stderr when it ends:
//
//	berth trace:   41.2 ms +  12.3 ms  open node1: ssh handshake
//
// the span's start (milliseconds since this package was initialised, which
// is early in the process's start-up) and its duration. Off, a span costs
// one branch. It records nothing else and changes no behaviour.
package trace

import (
	"fmt"
	"os"
	"sync"
	"time"
)

var (
	on    = os.Getenv("BERTH_TRACE") != "" && os.Getenv("BERTH_TRACE") != "0"
	start = time.Now()
	mu    sync.Mutex
)

// On reports whether tracing is enabled.
func On() bool { return on }

// Span starts the span name; calling the returned function ends it and
// prints its line.
func Span(name string) func() {
	if !on {
		return func() {}
	}
	t0 := time.Now()
	return func() { emit(t0, time.Now(), name) }
}

// Spanf is Span with a formatted name (formatted only when tracing is on).
func Spanf(format string, args ...any) func() {
	if !on {
		return func() {}
	}
	return Span(fmt.Sprintf(format, args...))
}

// Mark prints a point in time (a span of no duration).
func Mark(name string) {
	if on {
		t := time.Now()
		emit(t, t, name)
	}
}

func emit(t0, t1 time.Time, name string) {
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(os.Stderr, "berth trace: %7.1f ms + %6.1f ms  %s\n", ms(t0.Sub(start)), ms(t1.Sub(t0)), name)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
