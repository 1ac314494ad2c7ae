package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// LogOptions say which of a container's log lines Node.LogStream sends.
type LogOptions struct {
	// Follow keeps the stream open for new lines until the container
	// stops or ctx ends.
	Follow bool
	// Since, if set, leaves out lines written before it.
	Since time.Time
	// Tail, if positive, sends only the last Tail lines (before following).
	Tail int
}

// LogLine is one line of a container's output, with the engine's
// timestamp.
type LogLine struct {
	Time   time.Time
	Stderr bool
	Text   string // without the line end
}

// ExecOptions describe a command run in a container by Node.Exec.
type ExecOptions struct {
	Cmd []string
	// TTY gives the command a terminal (its output then comes on Stdout
	// only), of Size [height, width] when set.
	TTY  bool
	Size [2]uint
	// Resize, when set, gets the terminal's new sizes.
	Resize <-chan [2]uint
	// Stdin, when set, is copied to the command's standard input, closed at
	// its EOF (without TTY).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// sinceArg is the API's form of a time: seconds.nanoseconds.
func sinceArg(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// LogStream sends the container's log lines, stdout and stderr, in the
// order the engine sends them, to line (called from one goroutine at a
// time), and returns when the stream ends: at once without Follow,
// else when the container stops or ctx ends. It has no request timeout
// beyond the first answer.
func (d *Node) LogStream(ctx context.Context, id string, opts LogOptions, line func(LogLine)) error {
	ictx, cancel := d.ctx(ctx)
	ins, err := d.cli.ContainerInspect(ictx, id)
	cancel()
	if err != nil {
		return d.wrap("logs of container "+id, err)
	}
	tail := "all"
	if opts.Tail > 0 {
		tail = fmt.Sprint(opts.Tail)
	}
	rc, err := d.cli.ContainerLogs(ctx, id, container.LogsOptions{
		ShowStdout: true, ShowStderr: true, Timestamps: true,
		Follow: opts.Follow, Since: sinceArg(opts.Since), Tail: tail,
	})
	if err != nil {
		return d.wrap("logs of container "+id, err)
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	out := &lineWriter{line: line}
	if ins.Config != nil && ins.Config.Tty {
		_, err = io.Copy(out, rc)
	} else {
		_, err = stdcopy.StdCopy(out, &lineWriter{line: line, stderr: true}, rc)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return d.wrap("logs of container "+id, err)
	}
	return nil
}

// lineWriter cuts the engine's timestamped log stream into LogLines.
type lineWriter struct {
	line   func(LogLine)
	stderr bool
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) emit(s string) {
	s = strings.TrimSuffix(s, "\r")
	l := LogLine{Stderr: w.stderr, Text: s}
	if ts, text, ok := strings.Cut(s, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, l.Text = t, text
		}
	} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		l.Time, l.Text = t, "" // an empty line
	}
	w.line(l)
}

// Exec runs opts.Cmd in the running container id over a hijacked stream
// (an SSH channel for a node over SSH) and returns its exit code. It has
// no request timeout beyond the first answers: the command runs until it
// ends or ctx does.
func (d *Node) Exec(ctx context.Context, id string, opts ExecOptions) (int, error) {
	what := "exec in container " + id
	cfg := container.ExecOptions{
		Cmd: opts.Cmd, Tty: opts.TTY,
		AttachStdin: opts.Stdin != nil, AttachStdout: true, AttachStderr: true,
	}
	if opts.TTY && opts.Size[0] > 0 && opts.Size[1] > 0 {
		cfg.ConsoleSize = &opts.Size
	}
	cctx, cancel := d.ctx(ctx)
	created, err := d.cli.ContainerExecCreate(cctx, id, cfg)
	cancel()
	if err != nil {
		return -1, d.wrap(what, err)
	}
	hj, err := d.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: opts.TTY, ConsoleSize: cfg.ConsoleSize})
	if err != nil {
		return -1, d.wrap(what, err)
	}
	defer hj.Close()
	stop := context.AfterFunc(ctx, func() { hj.Close() })
	defer stop()
	if opts.Resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					rctx, cancel := d.ctx(ctx)
					d.cli.ContainerExecResize(rctx, created.ID, container.ResizeOptions{Height: sz[0], Width: sz[1]})
					cancel()
				}
			}
		}()
	}
	if opts.Stdin != nil {
		// Not waited for: a terminal's read blocks until the next key.
		go func() {
			io.Copy(hj.Conn, opts.Stdin)
			// With a terminal the engine ends the whole stream at stdin's
			// EOF, output unread; a terminal in raw mode sends no EOF
			// (Ctrl-D is a byte), so only a pipe's end is passed on.
			if !opts.TTY {
				hj.CloseWrite()
			}
		}()
	}
	stdout, stderr := orDiscard(opts.Stdout), orDiscard(opts.Stderr)
	if opts.TTY {
		_, err = io.Copy(stdout, hj.Reader)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, hj.Reader)
	}
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return -1, d.wrap(what, err)
	}
	// The stream ends as the process does; the engine records the exit
	// code a moment later.
	ictx, cancel := d.ctx(ctx)
	defer cancel()
	for {
		ins, err := d.cli.ContainerExecInspect(ictx, created.ID)
		if err != nil {
			return -1, d.wrap(what, err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		select {
		case <-ictx.Done():
			return -1, d.wrap(what, ictx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
