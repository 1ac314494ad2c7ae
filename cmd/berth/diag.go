package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// ANSI styles for diagnostics; used only when colour is on.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
)

// writeDiags renders diagnostics for people on s.Err: for each one a
// "FILE:LINE:COL: error: summary" line, then HCL's source snippet and the
// detail. files are the parsed files (config.Config.Files) for the snippets;
// nil is fine.
func writeDiags(s Streams, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) {
	writeDiagsTo(s.Err, files, diags, color)
}

func writeDiagsTo(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) {
	for _, d := range diags {
		sev, style := "error", ansiRed
		if d.Severity == hcl.DiagWarning {
			sev, style = "warning", ansiYellow
		}
		var head strings.Builder
		if d.Subject != nil {
			fmt.Fprintf(&head, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		if color {
			fmt.Fprintf(&head, "%s%s%s%s: %s%s%s", ansiBold, style, sev, ansiReset, ansiBold, d.Summary, ansiReset)
		} else {
			fmt.Fprintf(&head, "%s: %s", sev, d.Summary)
		}
		fmt.Fprintln(w, head.String())

		// HCL's writer starts with its own "Error: summary" line and a blank
		// one; the line above replaces them.
		var buf bytes.Buffer
		tw := hcl.NewDiagnosticTextWriter(&buf, files, 0, color)
		if err := tw.WriteDiagnostic(d); err != nil {
			fmt.Fprintf(w, "\n%s\n\n", d.Detail)
			continue
		}
		body := buf.String()
		if i := strings.Index(body, "\n"); i >= 0 {
			body = body[i+1:]
		}
		body = strings.TrimLeft(body, "\n")
		if strings.TrimSpace(body) == "" {
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "\n%s", body)
		if !strings.HasSuffix(body, "\n\n") {
			fmt.Fprintln(w)
		}
	}
}

// countDiags returns the number of errors and warnings.
func countDiags(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// plural is "1 error", "2 errors".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// jsonPos and jsonDiagnostic are Terraform's validate -json shapes.
type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonDiagnostic struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
}

// diagsJSON returns diagnostics as a JSON-encodable list (never null).
func diagsJSON(diags hcl.Diagnostics) any {
	out := make([]jsonDiagnostic, 0, len(diags))
	for _, d := range diags {
		j := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			j.Severity = "warning"
		}
		if r := d.Subject; r != nil {
			j.Range = &jsonRange{
				Filename: r.Filename,
				Start:    jsonPos{Line: r.Start.Line, Column: r.Start.Column, Byte: r.Start.Byte},
				End:      jsonPos{Line: r.End.Line, Column: r.End.Column, Byte: r.End.Byte},
			}
		}
		out = append(out, j)
	}
	return out
}
