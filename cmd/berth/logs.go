package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

func init() {
	register(&command{
		name:     "logs",
		synopsis: "Show the output of a service's replicas, merged across nodes",
		usage:    "logs [options] SERVICE[.N]...",
		help: `
Reads the configuration in -dir (default: the current directory) and shows
the output (stdout and stderr) of every replica of each SERVICE, or of
replica N only with SERVICE.N, read over the nodes' SSH connections and
merged in time order. Each line starts with its replica and node:

  web.2@node1 | listening on :8080

On a terminal each replica has its own colour. With -f, berth follows the
output until Ctrl-C, and picks up a replica's new container when an apply
replaces it (it looks every 2 seconds), saying so on stderr.

The lines are the containers' own output, shown as they wrote it; berth's
own messages never show a sensitive value.

Exit status: 0, or 1 when the configuration has errors, a service or
replica is not found, or a node could not be read (the other replicas'
lines are still shown).`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			cf := addConnFlags(fs)
			dir := fs.String("dir", ".", "Read the configuration in `DIR`.")
			follow := fs.Bool("f", false, "Follow the output until Ctrl-C, across replacements of the replicas.")
			since := fs.String("since", "", "Show lines since a `TIME`: a duration ago (10m, 1h30m) or an RFC 3339 time.")
			tail := fs.Int("tail", -1, "Show the last `N` lines of each replica's container (-1: all).")
			timestamps := fs.Bool("timestamps", false, "Show each line's time, as the engine recorded it.")
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) == 0 {
					return usageErr("name a service: berth logs SERVICE[.N]...")
				}
				targets, err := parseTargets(args)
				if err != nil {
					return err
				}
				opts := executor.LogOptions{Follow: *follow, Tail: *tail}
				if *since != "" {
					if opts.Since, err = parseSince(*since, time.Now()); err != nil {
						return err
					}
				}
				if *tail == 0 {
					if !*follow {
						return nil // no lines asked for
					}
					opts.Since = time.Now() // new lines only
				}
				cfg, err := loadConfig(s, *dir, cf)
				if err != nil {
					return err
				}
				out := s.Out // the containers' lines, as they wrote them
				s = redactStreams(s, cfg)
				lv := newLogsView(out, !noColor(s, *cf.noColor), *timestamps)
				req := cf.request(s, cfg, executor.OpLogs)
				req.Logs = &executor.LogsRequest{
					Targets: targets, LogOptions: opts, Line: lv.line,
					Notice: func(msg string) { fmt.Fprintf(s.Err, "berth: %s\n", msg) },
				}
				o, err := executor.Run(ctx, cfg, req, nil)
				if err != nil {
					return err
				}
				if n := unreachableNodes(o.Live); n > 0 {
					return exitCode(1, nil)
				}
				return nil
			}
		},
	})
}

// parseTargets reads SERVICE and SERVICE.N arguments.
func parseTargets(args []string) ([]executor.Target, error) {
	var out []executor.Target
	for _, a := range args {
		t := executor.Target{Service: a}
		if i := strings.LastIndex(a, "."); i >= 0 {
			n, err := strconv.Atoi(a[i+1:])
			if err != nil || n < 1 {
				return nil, usageErr("%q: a replica is SERVICE.N, N a number from 1", a)
			}
			t = executor.Target{Service: a[:i], Replica: n}
		}
		if t.Service == "" {
			return nil, usageErr("%q: no service named", a)
		}
		out = append(out, t)
	}
	return out, nil
}

// parseSince reads -since: a duration before now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageErr("-since %s: a duration before now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErr("-since %q: want a duration such as 10m or 1h30m, or a time such as 2026-12-03T10:00:00Z", s)
}

// unreachableNodes counts the nodes of live that could not be read.
func unreachableNodes(live *planner.Live) int {
	n := 0
	if live != nil {
		for _, st := range live.Nodes {
			if !st.Reachable {
				n++
			}
		}
	}
	return n
}

// replicaColors are the colours of the replicas' prefixes, in order of
// their first line.
var replicaColors = []string{ansiCyan, ansiYellow, ansiGreen, ansiMagenta, "\x1b[34m", "\x1b[36;1m", "\x1b[33;1m", "\x1b[32;1m", "\x1b[35;1m", "\x1b[34;1m"}

// logsView writes the merged lines: "web.2@node1 | text", the prefixes
// padded to the widest seen so far, coloured per replica.
type logsView struct {
	w          io.Writer
	color      bool
	timestamps bool
	width      int
	colors     map[string]string
}

func newLogsView(w io.Writer, color, timestamps bool) *logsView {
	return &logsView{w: w, color: color, timestamps: timestamps, colors: map[string]string{}}
}

func (v *logsView) line(l executor.ReplicaLine) {
	p := l.Prefix()
	v.width = max(v.width, len(p))
	pad := strings.Repeat(" ", v.width-len(p))
	text := l.Text
	if v.timestamps && !l.Time.IsZero() {
		text = l.Time.UTC().Format("2006-01-02T15:04:05.000000000Z") + " " + text
	}
	sep := " | "
	if text == "" {
		sep = " |"
	}
	if v.color {
		c, ok := v.colors[p]
		if !ok {
			c = replicaColors[len(v.colors)%len(replicaColors)]
			v.colors[p] = c
		}
		fmt.Fprintf(v.w, "%s%s%s%s%s%s\n", c, p, pad, strings.TrimRight(sep, " "), ansiReset, strings.TrimPrefix(sep, " |")+text)
		return
	}
	fmt.Fprintf(v.w, "%s%s%s%s\n", p, pad, sep, text)
}
