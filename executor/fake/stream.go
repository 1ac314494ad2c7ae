package fake

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/planner"
)

// wake tells LogStream's followers to look again. f.mu must be held.
func (f *Node) wake() {
	if f.logWake != nil {
		close(f.logWake)
	}
	f.logWake = make(chan struct{})
}

// startLogs writes what a container writes as it starts: its image's
// Behaviour.Logs, else the line the test image (berth-test/echo) prints.
// f.mu must be held.
func (f *Node) startLogs(c *fakeContainer) {
	if c.behave.Logs != "" {
		for _, l := range strings.Split(strings.TrimSuffix(c.behave.Logs, "\n"), "\n") {
			f.writeLog(c, time.Time{}, false, l)
		}
		return
	}
	node := "suite"
	for _, e := range c.spec.Env {
		if e.Name == "NODE" && !e.Sensitive {
			node = e.Value
		}
	}
	f.writeLog(c, time.Time{}, false, fmt.Sprintf("echo %s (ok) listening on :8080 as %s", tagOf(c.c.Image), node))
}

func tagOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i >= 0 && !strings.Contains(ref[i:], "/") {
		return ref[i+1:]
	}
	return "latest"
}

// writeLog appends a line to c's log. f.mu must be held.
func (f *Node) writeLog(c *fakeContainer, at time.Time, stderr bool, text string) {
	if at.IsZero() {
		at = time.Now()
	}
	c.logs = append(c.logs, engine.LogLine{Time: at, Stderr: stderr, Text: text})
	f.wake()
}

// WriteLog makes the container write a line of output at time at (zero:
// now), as the engine would timestamp it.
func (f *Node) WriteLog(idOrName string, at time.Time, stderr bool, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(idOrName)
	if c == nil {
		return f.notFound("container", idOrName)
	}
	f.writeLog(c, at, stderr, text)
	return nil
}

// LogStream sends the container's lines as the engine does; following, it
// ends when the container is no longer running or is removed.
func (f *Node) LogStream(ctx context.Context, id string, opts engine.LogOptions, line func(engine.LogLine)) error {
	f.mu.Lock()
	if err := f.begin(ctx, "LogStream", id); err != nil {
		f.mu.Unlock()
		return err
	}
	c := f.find(id)
	if c == nil {
		f.mu.Unlock()
		return f.notFound("container", id)
	}
	var first []engine.LogLine
	for _, l := range c.logs {
		if opts.Since.IsZero() || !l.Time.Before(opts.Since) {
			first = append(first, l)
		}
	}
	if opts.Tail > 0 && len(first) > opts.Tail {
		first = first[len(first)-opts.Tail:]
	}
	next := len(c.logs)
	f.mu.Unlock()
	for _, l := range first {
		line(l)
	}
	if !opts.Follow {
		return nil
	}
	for {
		f.mu.Lock()
		f.advance()
		if f.logWake == nil {
			f.wake()
		}
		wake := f.logWake
		_, present := f.containers[c.c.ID]
		lines := c.logs[next:]
		next = len(c.logs)
		running := present && c.c.State == "running"
		f.mu.Unlock()
		for _, l := range lines {
			line(l)
		}
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(50 * time.Millisecond): // timed changes (Behaviour.Changes)
		}
	}
}

// SetExec replaces the command runner of Exec. The default runs a model of
// the test image's "/echo check [URL]" (exit 0 for the container's own
// port 8080, else 1 with a message on stderr) and answers any other
// command as runc does for a missing executable (exit 127).
func (f *Node) SetExec(run func(c planner.Container, opts engine.ExecOptions) int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exec = run
}

// Exec runs opts.Cmd through the runner SetExec set.
func (f *Node) Exec(ctx context.Context, id string, opts engine.ExecOptions) (int, error) {
	f.mu.Lock()
	if err := f.begin(ctx, "Exec", id); err != nil {
		f.mu.Unlock()
		return -1, err
	}
	c := f.find(id)
	if c == nil {
		f.mu.Unlock()
		return -1, f.notFound("container", id)
	}
	if c.c.State != "running" {
		f.mu.Unlock()
		return -1, fmt.Errorf("exec in container %s: Error response from daemon: container %s is not running", id, c.c.ID)
	}
	run, cc := f.exec, cloneContainer(c.c)
	f.mu.Unlock()
	if run == nil {
		run = echoExec
	}
	return run(cc, opts), nil
}

func echoExec(c planner.Container, opts engine.ExecOptions) int {
	stdout, stderr := opts.Stdout, opts.Stderr
	if opts.TTY {
		stderr = stdout
	}
	if len(opts.Cmd) >= 2 && opts.Cmd[0] == "/echo" && opts.Cmd[1] == "check" {
		if len(opts.Cmd) == 2 {
			return 0
		}
		if u, err := url.Parse(opts.Cmd[2]); err == nil && u.Port() == "8080" {
			return 0
		}
		if stderr != nil {
			fmt.Fprintf(stderr, "check: Get %q: connection refused\n", opts.Cmd[2])
		}
		return 1
	}
	if stdout != nil {
		fmt.Fprintf(stdout, "OCI runtime exec failed: exec failed: unable to start container process: exec: %q: executable file not found in $PATH: unknown\r\n", strings.Join(opts.Cmd[:min(1, len(opts.Cmd))], ""))
	}
	return 127
}
