package importcompose

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// locator finds a key's line in the Compose files. compose-go keeps no
// positions, so the importer looks the key up again in each file's YAML
// nodes, which carry line numbers.
type locator struct {
	files []string
	roots []*yaml.Node
}

func newLocator(files []string) (*locator, error) {
	l := &locator{files: files}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var n yaml.Node
		if err := yaml.Unmarshal(b, &n); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		l.roots = append(l.roots, &n)
	}
	return l, nil
}

// splitKey splits "services.web.ports[1].mode" into its steps.
func splitKey(key string) []string {
	var out []string
	for _, p := range strings.Split(key, ".") {
		for {
			i := strings.IndexByte(p, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				out = append(out, p[:i])
			}
			j := strings.IndexByte(p, ']')
			if j < i {
				break
			}
			out = append(out, p[i:j+1])
			p = p[j+1:]
		}
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// find returns the last file that has key (later files override earlier
// ones) and the key's line; failing that, the file and line of the
// longest part of the key found.
func (l *locator) find(key string) (string, int) {
	steps := splitKey(key)
	bestFile, bestLine, bestDepth := l.files[0], 0, -1
	for i := len(l.files) - 1; i >= 0; i-- {
		depth, line := walk(l.roots[i], steps)
		if depth == len(steps) {
			return l.files[i], line
		}
		if depth > bestDepth {
			bestFile, bestLine, bestDepth = l.files[i], line, depth
		}
	}
	return bestFile, bestLine
}

// has reports whether some file has key (compose-go adds defaults, such
// as a service's default network, that no file holds).
func (l *locator) has(key string) bool {
	steps := splitKey(key)
	for _, r := range l.roots {
		if d, _ := walk(r, steps); d == len(steps) {
			return true
		}
	}
	return false
}

// value returns the scalar at key in the last file that has it.
func (l *locator) value(key string) (string, bool) {
	steps := splitKey(key)
	for i := len(l.files) - 1; i >= 0; i-- {
		if n := node(l.roots[i], steps); n != nil && n.Kind == yaml.ScalarNode {
			return n.Value, true
		}
	}
	return "", false
}

func walk(n *yaml.Node, steps []string) (depth, line int) {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for d, s := range steps {
		next, keyLine := child(n, s)
		if next == nil {
			return d, line
		}
		n, line = next, keyLine
	}
	return len(steps), line
}

func node(n *yaml.Node, steps []string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, s := range steps {
		if n, _ = child(n, s); n == nil {
			return nil
		}
	}
	return n
}

// child is the value under s ("key" or "[i]") and the line of its key.
func child(n *yaml.Node, s string) (*yaml.Node, int) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if strings.HasPrefix(s, "[") {
		i, err := strconv.Atoi(strings.Trim(s, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
			return nil, 0
		}
		return n.Content[i], n.Content[i].Line
	}
	if n.Kind != yaml.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Value == s {
			return n.Content[i+1], k.Line
		}
		if k.Value == "<<" { // a merge key: look in what it merges
			if v, line := child(n.Content[i+1], s); v != nil {
				return v, line
			}
		}
	}
	return nil, 0
}
