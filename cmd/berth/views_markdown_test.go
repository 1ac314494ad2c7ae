package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"

	"github.com/berth-dev/berth/planner"
)

// everyKindPlan merges planner golden plans into one that has every action
// kind (create, update, replace both orders, delete, restore, discard),
// image transfers, network creations and removals, warnings, an unreachable node, a sensitive value and a
// change with a cause, and ingress route changes. Services are renamed after their case so that they
// stay apart.
func everyKindPlan(t *testing.T) *planner.Plan {
	t.Helper()
	out := &planner.Plan{FormatVersion: planner.FormatVersion, ID: "0123456789abcdef", Project: "demo", Unchanged: map[string]int{}}
	for _, name := range []string{"image-build-send-tag", "resources-only-update-in-place", "image-change-forced-stop-first",
		"sensitive-env-masked", "scale-down", "interrupted-apply-rollback", "node-unreachable", "refs-db-moves", "ingress-update-start-first"} {
		p := goldenPlan(t, name)
		rename := func(s string) string { return name + "-" + s }
		for _, a := range p.Actions {
			a.Service = rename(a.Service)
			out.Actions = append(out.Actions, a)
		}
		for _, s := range p.Services {
			s.Name = rename(s.Name)
			out.Services = append(out.Services, s)
		}
		for s, n := range p.Unchanged {
			out.Unchanged[rename(s)] = n
		}
		out.Recovery = append(out.Recovery, p.Recovery...)
		if p.Interrupted != nil {
			out.Interrupted = p.Interrupted
		}
		out.Images = append(out.Images, p.Images...)
		if name == "refs-db-moves" { // one project network: its work from one plan (a create and a delete)
			out.Networks = append(out.Networks, p.Networks...)
		}
		if p.Ingress != nil {
			out.Ingress = p.Ingress
		}
		out.Warnings = append(out.Warnings, p.Warnings...)
		out.Nodes = append(out.Nodes, p.Nodes...)
	}
	return out
}

// bigPlan has n services of 8 replicas, each replaced with a few long
// changed fields: far more than a comment holds when n is large.
func bigPlan(n int) *planner.Plan {
	p := &planner.Plan{FormatVersion: planner.FormatVersion, ID: "feedfacefeedface", Project: "big"}
	for s := 1; s <= n; s++ {
		name := fmt.Sprintf("svc-%03d", s)
		sp := planner.ServicePlan{Name: name, Image: "registry.example.com/team/" + name + ":v2", Replicas: 8, Placement: map[string]string{}}
		for r := 1; r <= 8; r++ {
			node := fmt.Sprintf("node%d", r%3+1)
			sp.Placement[fmt.Sprint(r)] = node
			p.Actions = append(p.Actions, planner.Action{Kind: planner.Replace, Order: planner.StartFirst, Service: name, Replica: r, Node: node,
				Container: fmt.Sprintf("big-%s-%d", name, r), Reason: "image changed", Batch: r, Step: len(p.Actions) + 1,
				Changes: []planner.FieldChange{
					{Field: "image", Old: `"registry.example.com/team/` + name + `:v1"`, New: `"registry.example.com/team/` + name + `:v2"`},
					{Field: "env.FEATURE_FLAGS", Old: `"` + strings.Repeat("a,", 40) + `"`, New: `"` + strings.Repeat("b,", 40) + `"`},
					{Field: "env.DB_PASSWORD", Old: "(sensitive value)", New: "(sensitive value)"},
				}})
		}
		p.Services = append(p.Services, sp)
	}
	return p
}

func markdownOf(t *testing.T, p *planner.Plan, planFile string) string {
	t.Helper()
	s, out, _ := viewStreams(false)
	if err := (planMarkdown{viewBase: newViewBase(s, false), planFile: planFile}).Planned(p); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// checkCommonMark renders md as GitHub does (CommonMark with the GFM
// tables extension, raw HTML kept) and checks that the structure came out
// as written: every table a table, every <details> with its diff as a
// code block, no table syntax left over as text.
func checkCommonMark(t *testing.T, name, md string) {
	t.Helper()
	var buf bytes.Buffer
	gm := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))
	if err := gm.Convert([]byte(md), &buf); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	h := buf.String()
	tables := 0
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "|---") {
			tables++
		}
	}
	if got := strings.Count(h, "<table>"); got != tables {
		t.Errorf("%s: %d tables written, %d rendered", name, tables, got)
	}
	if strings.Contains(h, "|---") {
		t.Errorf("%s: table syntax left in the HTML", name)
	}
	details := strings.Count(md, "<details>")
	if got := strings.Count(h, "<details>"); got != details {
		t.Errorf("%s: %d <details> written, %d rendered", name, details, got)
	}
	if got := strings.Count(h, `<pre><code class="language-diff">`); got != details {
		t.Errorf("%s: %d diff blocks rendered for %d <details>", name, got, details)
	}
	if strings.Count(h, "</details>") != details {
		t.Errorf("%s: unbalanced </details>", name)
	}
}

// The Markdown view: goldens for a small plan, one with every action kind
// and one cut at the comment limit; each renders as valid CommonMark
// (GFM tables) with its structure intact.
func TestPlanMarkdownGolden(t *testing.T) {
	cases := map[string]*planner.Plan{"every-kind": everyKindPlan(t), "cut": bigPlan(120)}
	for _, name := range []string{"image-change-start-first", "no-op", "destroy", "sensitive-env-masked", "image-build-send-tag", "node-unreachable", "interrupted-apply-rollback"} {
		cases[name] = goldenPlan(t, name)
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			md := markdownOf(t, p, "plan.bin")
			golden(t, "markdown/"+name+".md", md)
			checkCommonMark(t, name, md)
			if n := utf8.RuneCountInString(md); n > markdownLimit {
				t.Errorf("%d characters, over the limit %d", n, markdownLimit)
			}
			if strings.Contains(md, "c7185758b81b") {
				t.Error("a sensitive value's hash is in the Markdown")
			}
		})
	}
}

// A plan over the limit is cut at a service boundary: whole sections only,
// a note with the count and characters left out and the plan file, and
// every service either complete or absent.
func TestPlanMarkdownCut(t *testing.T) {
	p := bigPlan(120)
	full := renderPlanMarkdown(p, "plan.bin", 1<<30)
	if utf8.RuneCountInString(full) <= markdownLimit {
		t.Fatalf("the big plan is only %d characters", len(full))
	}
	md := markdownOf(t, p, "plan.bin")
	i := strings.Index(md, "\n---\n\n> [!NOTE]")
	if i < 0 {
		t.Fatalf("no cut note:\n%s", md[len(md)-500:])
	}
	if !strings.HasPrefix(full, md[:i]) {
		t.Fatal("the cut plan is not a prefix of the full plan")
	}
	if !strings.HasPrefix(full[i:], "#### service ") {
		t.Fatalf("cut inside a service: %q", full[i:i+80])
	}
	kept := strings.Count(md, "#### service ")
	left := len(p.Services) - kept
	if want := fmt.Sprintf("%d of 120 services (", left); !strings.Contains(md, want) {
		t.Errorf("note does not say %q", want)
	}
	if !strings.Contains(md, "run `berth show plan.bin`") {
		t.Error("note does not name berth show plan.bin")
	}
	// The note's character count is exact.
	if want := groupThousands(utf8.RuneCountInString(full[i:])) + " characters) are left out"; !strings.Contains(md, want) {
		t.Errorf("note does not say %q", want)
	}
	// Without a plan file, the note says how to get one.
	if md := markdownOf(t, p, ""); !strings.Contains(md, "berth plan -out PLANFILE") {
		t.Error("note without a plan file does not say how to save one")
	}
	// A plan just under the limit is not cut.
	if md := renderPlanMarkdown(p, "", utf8.RuneCountInString(full)); md != full {
		t.Error("a plan that fits was cut")
	}
}

func TestMarkdownEscaping(t *testing.T) {
	for in, want := range map[string]string{"a`b": "``a`b``", "`x": "`` `x ``", "": "` `", "a|b": "`a|b`"} {
		if got := codeSpan(in); got != want {
			t.Errorf("codeSpan(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cell("a|b\nc <x>"); got != `a\|b\\nc \<x\>` {
		t.Errorf("cell: %q", got)
	}
	if got := codeBlock("diff", "```\n"); got != "````diff\n```\n````\n" {
		t.Errorf("codeBlock: %q", got)
	}
}

// show -markdown FILE renders a saved plan; -json and -markdown together
// are a usage error.
func TestShowMarkdown(t *testing.T) {
	path := t.TempDir() + "/p.plan"
	if err := writePlanFile(path, &planner.SavedPlan{BerthVersion: "test", ConfigDir: "/x", Plan: goldenPlan(t, "sensitive-env-masked")}); err != nil {
		t.Fatal(err)
	}
	code, out, errb := runBerth(t, nil, "show", "-markdown", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	if want := markdownOf(t, goldenPlan(t, "sensitive-env-masked"), path); out != want {
		t.Errorf("show -markdown:\n%s\nwant\n%s", out, want)
	}
	if code, _, errb := runBerth(t, nil, "show", "-markdown", "-json", path); code != 1 || !strings.Contains(errb, "exclude each other") {
		t.Errorf("-json -markdown: exit %d, %s", code, errb)
	}
}
