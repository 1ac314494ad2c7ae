package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestNoColor pins when colour is off: the flag, NO_COLOR with a non-empty
// value (https://no-color.org), or output that is not a terminal.
func TestNoColor(t *testing.T) {
	cases := []struct {
		name     string
		terminal bool
		env      []string
		flag     bool
		want     bool // colour off
	}{
		{"terminal", true, nil, false, false},
		{"terminal, -no-color", true, nil, true, true},
		{"terminal, NO_COLOR=1", true, []string{"NO_COLOR=1"}, false, true},
		{"terminal, NO_COLOR=true", true, []string{"HOME=/root", "NO_COLOR=true"}, false, true},
		{"terminal, empty NO_COLOR", true, []string{"NO_COLOR="}, false, false},
		{"terminal, NO_COLORS is another variable", true, []string{"NO_COLORS=1"}, false, false},
		{"not a terminal", false, nil, false, true},
	}
	for _, c := range cases {
		s := Streams{OutTerminal: c.terminal, Environ: c.env}
		if got := noColor(s, c.flag); got != c.want {
			t.Errorf("%s: noColor = %v, want %v", c.name, got, c.want)
		}
	}
}

// Diagnostics go to stderr, so stderr's own terminal state decides their
// colour (validate and fmt), not stdout's.
func TestDiagnosticsColourFollowsStderr(t *testing.T) {
	invalid := "../../config/testdata/invalid/port-zero"
	for _, tt := range []struct {
		out, err bool
		want     bool // ESC on stderr
	}{
		{out: true, err: false, want: false},
		{out: false, err: true, want: true},
	} {
		for _, args := range [][]string{{"validate", invalid}, {"fmt", "-check", "-"}} {
			var out, errOut bytes.Buffer
			s := Streams{In: strings.NewReader("a = {\n"), Out: &out, Err: &errOut, OutTerminal: tt.out, ErrTerminal: tt.err}
			if code := Run(context.Background(), args, s); code != 1 {
				t.Fatalf("%v: exit %d, want 1\n%s", args, code, errOut.String())
			}
			if got := strings.Contains(errOut.String(), "\x1b["); got != tt.want {
				t.Errorf("%v with stdout terminal %v, stderr terminal %v: escape codes on stderr %v, want %v:\n%q",
					args, tt.out, tt.err, got, tt.want, errOut.String())
			}
		}
	}
}
