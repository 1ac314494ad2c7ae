// Package env reads variables from an os.Environ()-style list. The executor's
// packages take their environment as such a list (from options) rather than
// reading the process's, so that tests and callers can replace it.
package env

import "strings"

// Get returns the value of key in environ (the last one wins, as in
// os.Getenv over that environment), or "".
func Get(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
