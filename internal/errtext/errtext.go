// Package errtext checks the text of berth's errors for tests: each layer
// adds its context once ("create container x: ...", not "create: create
// container x: ...").
package errtext

import (
	"strings"
	"unicode"
)

// RepeatedAtJoin returns the first join ("a: b") of s where the context
// before it and the text after it begin with the same word, or the word
// before it is the word after it ("create: create container x", "create
// volume x: create volume x: ..."), or "". Each line is checked on its own,
// without a list bullet ("  - ").
func RepeatedAtJoin(s string) string {
	words := func(s string) []string {
		return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_'
		})
	}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "- ")
		segs := strings.Split(line, ": ")
		for i := 1; i < len(segs); i++ {
			a, b := words(segs[i-1]), words(segs[i])
			if len(a) == 0 || len(b) == 0 {
				continue
			}
			if a[len(a)-1] == b[0] || a[0] == b[0] {
				return segs[i-1] + ": " + segs[i]
			}
		}
	}
	return ""
}
