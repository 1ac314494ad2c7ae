package main

import "testing"

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
