package importcompose

import "strings"

// A Compose value is a template: literal text with ${NAME} (or $NAME)
// interpolations, "$$" for a literal "$". The importer never substitutes
// a value (the environment and .env often hold passwords); each
// interpolation becomes an HCL variable.

// segment is literal text (name == "") or an interpolation of name.
type segment struct {
	lit  string
	name string
	// def is the default of ${NAME:-def} or ${NAME-def}; hasDef says one
	// was written.
	def    string
	hasDef bool
	// op is the modifier that the importer cannot carry (":+", "+"), or "".
	op string
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameChar(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }

// parseTemplate splits s into segments; ok is false for a malformed
// interpolation (an unclosed "${").
func parseTemplate(s string) (segs []segment, ok bool) {
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			lit.WriteByte(c)
			continue
		}
		switch n := s[i+1]; {
		case n == '$':
			lit.WriteByte('$')
			i++
		case n == '{':
			depth, j := 1, i+2
			for ; j < len(s) && depth > 0; j++ {
				switch s[j] {
				case '{':
					depth++
				case '}':
					depth--
				}
			}
			if depth != 0 {
				return nil, false
			}
			body := s[i+2 : j-1]
			k := 0
			for k < len(body) && isNameChar(body[k]) {
				k++
			}
			if k == 0 || !isNameStart(body[0]) {
				return nil, false
			}
			seg := segment{name: body[:k]}
			rest := body[k:]
			switch {
			case rest == "":
			case strings.HasPrefix(rest, ":-"):
				seg.def, seg.hasDef = rest[2:], true
			case strings.HasPrefix(rest, "-"):
				seg.def, seg.hasDef = rest[1:], true
			case strings.HasPrefix(rest, ":?"), strings.HasPrefix(rest, "?"):
				// required: a variable without a default is required anyway
			case strings.HasPrefix(rest, ":+"):
				seg.op = ":+"
			case strings.HasPrefix(rest, "+"):
				seg.op = "+"
			default:
				return nil, false
			}
			flush()
			segs = append(segs, seg)
			i = j - 1
		case isNameStart(n):
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			flush()
			segs = append(segs, segment{name: s[i+1 : j]})
			i = j - 1
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return segs, true
}

// hasVars reports whether any segment is an interpolation.
func hasVars(segs []segment) bool {
	for _, s := range segs {
		if s.name != "" {
			return true
		}
	}
	return false
}
