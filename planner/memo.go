package planner

import (
	"strings"

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

// key is the node's signature for this expression.
func (m *exprMemo) key(n *nodeView) string {
	if m.whole {
		return "\x00" + n.name()
	}
	var b strings.Builder
	for _, a := range m.attrs {
		b.WriteString(a)
		b.WriteByte('=')
		switch a {
		case "name":
			b.WriteString(n.name())
		case "address":
			b.WriteString(n.cfg.Address)
		default:
			v := n.value.GetAttr(a)
			b.WriteString(v.GoString())
		}
		b.WriteByte(0)
	}
	for _, k := range m.labelKeys {
		v, ok := n.cfg.Labels[k]
		b.WriteString("l:" + k)
		if ok {
			b.WriteByte('=')
			b.WriteString(v)
		}
		b.WriteByte(0)
	}
	return b.String()
}

func (m *exprMemo) value(n *nodeView) (cty.Value, hcl.Diagnostics) {
	k := m.key(n)
	if r, ok := m.cache[k]; ok {
		return r.val, r.diags
	}
	v, d := m.expr.Value(config.PlacementContext(n.value))
	m.cache[k] = memoResult{v, d}
	return v, d
}
