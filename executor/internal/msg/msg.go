// Package msg formats the text of the executor packages' errors.
package msg

import "strings"

// OneLine puts a multi-line message (a remote stderr, an engine's error) on
// one line, so that an error names its node at the start of one line.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", "; ")
}
