package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// MaxNesting is how deep brackets, parentheses, braces, strings and
// template sequences, conditionals and runs of unary operators may nest in
// a file or a -var value. HCL's parser recurses once per level, and the Go
// runtime kills a process whose stack overflows (about 60000 levels of
// brackets, a 120 kB file): no recover() can turn that into a diagnostic, so
// berth checks the depth on the tokens first. Real configurations nest a
// handful of levels.
const MaxNesting = 256

// CheckNesting lexes src (a whole file, or with expr an expression) and
// returns an error diagnostic at the first token nested deeper than
// MaxNesting, or nil. The lexer itself does not recurse.
func CheckNesting(src []byte, filename string, expr bool) *hcl.Diagnostic {
	start := hcl.Pos{Line: 1, Column: 1}
	var toks hclsyntax.Tokens
	if expr {
		toks, _ = hclsyntax.LexExpression(src, filename, start)
	} else {
		toks, _ = hclsyntax.LexConfig(src, filename, start)
	}
	depth, cond, unary := 0, 0, 0
	for i := range toks {
		tok := &toks[i]
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenTemplateInterp,
			hclsyntax.TokenTemplateControl, hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc:
			depth++
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenTemplateSeqEnd,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			if depth > 0 {
				depth--
			}
		case hclsyntax.TokenQuestion:
			cond++
		case hclsyntax.TokenColon:
			if cond > 0 {
				cond--
			}
		}
		if tok.Type == hclsyntax.TokenBang || tok.Type == hclsyntax.TokenMinus {
			unary++
		} else if tok.Type != hclsyntax.TokenNewline {
			unary = 0
		}
		if depth+cond+unary > MaxNesting {
			rng := tok.Range
			return &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Nesting too deep",
				Detail: fmt.Sprintf("Brackets, braces, parentheses, strings, conditionals or unary operators nest more than %d levels deep here; "+
					"berth does not read such input.", MaxNesting),
				Subject: &rng,
			}
		}
	}
	return nil
}
