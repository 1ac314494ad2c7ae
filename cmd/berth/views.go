package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/berth-dev/berth/planner"
)

const (
	ansiGreen   = "\x1b[32m"
	ansiMagenta = "\x1b[35m"
	ansiCyan    = "\x1b[36m"
)

// planView renders a plan for people (with optional colour) or as JSON. The
// plan types carry no colour: it is added here, by each line's symbol.
type planView struct {
	w     io.Writer
	json  bool
	color bool
}

func (v planView) show(p *planner.Plan) error {
	if v.json {
		enc := json.NewEncoder(v.w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	var b bytes.Buffer
	if err := p.WriteText(&b); err != nil {
		return err
	}
	if !v.color {
		_, err := v.w.Write(b.Bytes())
		return err
	}
	_, err := io.WriteString(v.w, colorPlan(b.String()))
	return err
}

// colorPlan colours the symbols of action lines and the summary.
func colorPlan(text string) string {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		t := strings.TrimLeft(l, " ")
		ind := l[:len(l)-len(t)]
		var style, sym string
		switch {
		case strings.HasPrefix(t, "-/+ "), strings.HasPrefix(t, "+/- "):
			style, sym = ansiMagenta, t[:3]
		case strings.HasPrefix(t, "+ "):
			style, sym = ansiGreen, "+"
		case strings.HasPrefix(t, "~ ") && len(ind) == 2:
			style, sym = ansiYellow, "~"
		case strings.HasPrefix(t, "- "):
			style, sym = ansiRed, "-"
		case strings.HasPrefix(t, "Plan:"), strings.HasPrefix(t, "No changes."):
			lines[i] = ansiBold + strings.TrimRight(l, "\n") + ansiReset + "\n"
			continue
		case strings.HasPrefix(t, "# service"):
			lines[i] = ind + ansiBold + strings.TrimRight(t, "\n") + ansiReset + "\n"
			continue
		default:
			continue
		}
		lines[i] = ind + style + sym + ansiReset + t[len(sym):]
	}
	return strings.Join(lines, "")
}
