package config

import (
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MaxNameLength bounds project, node and service names: they end up in
// container names and hostnames, where 63 is the DNS label limit.
const MaxNameLength = 63

// nameRE is what project, node and service names must match: Docker-name
// material that is also a DNS label, lowercase so that names never differ only
// by case.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ValidName reports whether s is a valid project, node or service name.
func ValidName(s string) bool { return len(s) <= MaxNameLength && nameRE.MatchString(s) }

// nameRule is the sentence diagnostics use to explain ValidName.
const nameRule = "A name starts with a lowercase letter or digit, continues with lowercase letters, digits, '_' and '-', and is at most 63 characters long."

// sanitizeName turns a directory name into a valid project name: lowercased,
// other characters replaced by '-', leading non-alphanumerics dropped.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '_' || r == '-':
			if b.Len() > 0 {
				b.WriteRune(r)
			}
		default:
			if b.Len() > 0 {
				b.WriteByte('-')
			}
		}
	}
	out := strings.TrimRight(b.String(), "-_")
	if len(out) > MaxNameLength {
		out = strings.TrimRight(out[:MaxNameLength], "-_")
	}
	if out == "" {
		return "berth"
	}
	return out
}

// defaultProjectName is the project name for a configuration without a
// project block: the base name of the directory's absolute path, sanitized.
func defaultProjectName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return sanitizeName(filepath.Base(abs))
}

// volumeNameRE is Docker's rule for named volumes.
var volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// imageRE is a close approximation of the distribution reference grammar:
// [domain[:port]/]path[:tag][@digest], with lowercase path components.
var imageRE = func() *regexp.Regexp {
	const (
		label     = `[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?`
		domain    = label + `(?:\.` + label + `)*(?::[0-9]+)?`
		component = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
		path      = component + `(?:/` + component + `)*`
		tag       = `:[\w][\w.-]{0,127}`
		digest    = `@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^(?:` + domain + `/)?` + path + `(?:` + tag + `)?(?:` + digest + `)?$`)
}()

// validImage reports whether s looks like a Docker image reference.
func validImage(s string) bool { return len(s) <= 512 && imageRE.MatchString(s) }

// validHostname reports whether s is an IP address or a DNS name (labels of
// letters, digits, '-' and '_', dot separated).
func validHostname(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// parseJumpHost splits an OpenSSH ProxyJump-style "[user@]host[:port]".
func parseJumpHost(s string) (user, host string, port int, ok bool) {
	rest := s
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, rest = s[:i], s[i+1:]
		if user == "" || strings.ContainsAny(user, " \t@:/") {
			return "", "", 0, false
		}
	}
	host = rest
	switch {
	case strings.HasPrefix(rest, "["), strings.Count(rest, ":") == 1:
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			return "", "", 0, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", "", 0, false
		}
		host, port = h, n
	}
	if !validHostname(host) {
		return "", "", 0, false
	}
	return user, host, port, true
}

// suggest returns the option closest to name, if one is close enough to be a
// likely typo, else "".
func suggest(name string, options []string) string {
	best, bestDist := "", 3
	for _, o := range slices.Sorted(slices.Values(options)) {
		if d := levenshtein(name, o); d < bestDist {
			best, bestDist = o, d
		}
	}
	return best
}

// didYouMean formats a suggestion as a sentence to append to a detail.
func didYouMean(name string, options []string) string {
	if s := suggest(name, options); s != "" {
		return " Did you mean " + strconv.Quote(s) + "?"
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
