package config

import (
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Functions returns the functions available in every expression: go-cty's
// stdlib under the names Terraform users know. The map is shared: do not
// modify it.
func Functions() map[string]function.Function { return functions }

var functions = map[string]function.Function{
	"try":             tryfunc.TryFunc,
	"can":             tryfunc.CanFunc,
	"abs":             stdlib.AbsoluteFunc,
	"ceil":            stdlib.CeilFunc,
	"chomp":           stdlib.ChompFunc,
	"chunklist":       stdlib.ChunklistFunc,
	"coalesce":        stdlib.CoalesceFunc,
	"coalescelist":    stdlib.CoalesceListFunc,
	"compact":         stdlib.CompactFunc,
	"concat":          stdlib.ConcatFunc,
	"contains":        stdlib.ContainsFunc,
	"csvdecode":       stdlib.CSVDecodeFunc,
	"distinct":        stdlib.DistinctFunc,
	"element":         stdlib.ElementFunc,
	"flatten":         stdlib.FlattenFunc,
	"floor":           stdlib.FloorFunc,
	"format":          stdlib.FormatFunc,
	"formatdate":      stdlib.FormatDateFunc,
	"formatlist":      stdlib.FormatListFunc,
	"indent":          stdlib.IndentFunc,
	"index":           stdlib.IndexFunc,
	"join":            stdlib.JoinFunc,
	"jsondecode":      stdlib.JSONDecodeFunc,
	"jsonencode":      stdlib.JSONEncodeFunc,
	"keys":            stdlib.KeysFunc,
	"length":          lengthFunc, // Terraform's: strings too
	"endswith":        endsWithFunc,
	"startswith":      startsWithFunc,
	"log":             stdlib.LogFunc,
	"lookup":          stdlib.LookupFunc,
	"lower":           stdlib.LowerFunc,
	"max":             stdlib.MaxFunc,
	"merge":           stdlib.MergeFunc,
	"min":             stdlib.MinFunc,
	"parseint":        stdlib.ParseIntFunc,
	"pow":             stdlib.PowFunc,
	"range":           stdlib.RangeFunc,
	"regex":           stdlib.RegexFunc,
	"regexall":        stdlib.RegexAllFunc,
	"regex_replace":   stdlib.RegexReplaceFunc,
	"replace":         stdlib.ReplaceFunc,
	"reverse":         stdlib.ReverseListFunc,
	"setintersection": stdlib.SetIntersectionFunc,
	"setproduct":      stdlib.SetProductFunc,
	"setsubtract":     stdlib.SetSubtractFunc,
	"setunion":        stdlib.SetUnionFunc,
	"signum":          stdlib.SignumFunc,
	"slice":           stdlib.SliceFunc,
	"sort":            stdlib.SortFunc,
	"split":           stdlib.SplitFunc,
	"strrev":          stdlib.ReverseFunc,
	"substr":          stdlib.SubstrFunc,
	"timeadd":         stdlib.TimeAddFunc,
	"title":           stdlib.TitleFunc,
	"tonumber":        stdlib.MakeToFunc(cty.Number),
	"tostring":        stdlib.MakeToFunc(cty.String),
	"tobool":          stdlib.MakeToFunc(cty.Bool),
	"tolist":          stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
	"tomap":           stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
	"trim":            stdlib.TrimFunc,
	"trimprefix":      stdlib.TrimPrefixFunc,
	"trimspace":       stdlib.TrimSpaceFunc,
	"trimsuffix":      stdlib.TrimSuffixFunc,
	"upper":           stdlib.UpperFunc,
	"values":          stdlib.ValuesFunc,
	"zipmap":          stdlib.ZipmapFunc,
}

// NodeInfo is what a placement expression sees as `node`: the node's
// configured name and labels plus the facts gathered live from its engine.
type NodeInfo struct {
	Name        string
	Address     string
	Labels      map[string]string
	CPUs        int
	MemoryBytes int64
	Arch        string
	OS          string
}

// NodeValue returns the cty object bound to `node` in placement expressions.
// Its shape does not depend on the node, so that validation can type-check
// expressions against an unknown node (see UnknownNodeValue).
func NodeValue(n NodeInfo) cty.Value {
	labels := map[string]cty.Value{}
	for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
		labels[k] = cty.StringVal(n.Labels[k])
	}
	labelVal := cty.MapValEmpty(cty.String)
	if len(labels) > 0 {
		labelVal = cty.MapVal(labels)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":    cty.StringVal(n.Name),
		"address": cty.StringVal(n.Address),
		"labels":  labelVal,
		"cpus":    cty.NumberIntVal(int64(n.CPUs)),
		"memory":  cty.NumberIntVal(n.MemoryBytes),
		"arch":    cty.StringVal(n.Arch),
		"os":      cty.StringVal(n.OS),
	})
}

// UnknownNodeValue is `node` with every attribute unknown: validation evaluates
// placement expressions against it to catch type errors and bad references
// without any live facts.
func UnknownNodeValue() cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"name":    cty.UnknownVal(cty.String),
		"address": cty.UnknownVal(cty.String),
		"labels":  cty.UnknownVal(cty.Map(cty.String)),
		"cpus":    cty.UnknownVal(cty.Number),
		"memory":  cty.UnknownVal(cty.Number),
		"arch":    cty.UnknownVal(cty.String),
		"os":      cty.UnknownVal(cty.String),
	})
}

// PlacementContext is the evaluation context for a placement expression on
// one node: `node` and the functions, nothing else.
func PlacementContext(node cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"node": node},
		Functions: Functions(),
	}
}
