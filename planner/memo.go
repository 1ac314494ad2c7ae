package planner

import (
	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// exprMemo evaluates a placement expression once per distinct combination of
// the node attributes it reads, so that a thousand nodes that share their
// labels cost one evaluation, not a thousand.
type exprMemo struct {
	expr hcl.Expression
	// attrs are the node attributes the expression reads; labelKeys the
	// label keys it reads. whole is set when a key cannot be known
	// statically (node.labels[x], or node itself): then every node is
	// evaluated.
	attrs     []string
	labelKeys []string
	whole     bool
	cache     map[string]memoResult
	buf       []byte
}

type memoResult struct {
	val   cty.Value
	diags hcl.Diagnostics
}

func newExprMemo(e hcl.Expression) *exprMemo {
	m := &exprMemo{expr: e, cache: map[string]memoResult{}}
	seen := map[string]bool{}
	for _, tr := range e.Variables() {
		if tr.RootName() != "node" || len(tr) < 2 {
			m.whole = true
			continue
		}
		attr, ok := traverserName(tr[1])
		if !ok {
			m.whole = true
			continue
		}
		if attr == "labels" {
			if len(tr) < 3 {
				m.whole = true
				continue
			}
			key, ok := traverserName(tr[2])
			if !ok {
				m.whole = true
				continue
			}
			if !seen["l:"+key] {
				seen["l:"+key] = true
				m.labelKeys = append(m.labelKeys, key)
			}
			continue
		}
		if !seen[attr] {
			seen[attr] = true
			m.attrs = append(m.attrs, attr)
		}
	}
	return m
}

func traverserName(t hcl.Traverser) (string, bool) {
	switch t := t.(type) {
	case hcl.TraverseAttr:
		return t.Name, true
	case hcl.TraverseIndex:
		if t.Key.Type() == cty.String && t.Key.IsKnown() && !t.Key.IsNull() {
			return t.Key.AsString(), true
		}
	}
	return "", false
}

// key appends the node's signature for this expression to b.
func (m *exprMemo) key(b []byte, n *nodeView) []byte {
	if m.whole {
		return append(append(b, 0), n.name()...)
	}
	for _, a := range m.attrs {
		b = append(append(b, a...), '=')
		switch a {
		case "name":
			b = append(b, n.name()...)
		case "address":
			b = append(b, n.cfg.Address...)
		default:
			v := n.value.GetAttr(a)
			b = append(b, v.GoString()...)
		}
		b = append(b, 0)
	}
	for _, k := range m.labelKeys {
		v, ok := n.cfg.Labels[k]
		b = append(append(b, "l:"...), k...)
		if ok {
			b = append(append(b, '='), v...)
		}
		b = append(b, 0)
	}
	return b
}

// value is the expression's value on n. The signature is built in a
// buffer of the memo's, and a string of it made only for a new entry:
// the planner is single-threaded.
func (m *exprMemo) value(n *nodeView) (cty.Value, hcl.Diagnostics) {
	m.buf = m.key(m.buf[:0], n)
	if r, ok := m.cache[string(m.buf)]; ok {
		return r.val, r.diags
	}
	v, d := m.expr.Value(config.PlacementContext(n.value))
	m.cache[string(m.buf)] = memoResult{v, d}
	return v, d
}
