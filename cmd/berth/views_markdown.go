package main

import (
	"fmt"
	"html"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/berth-dev/berth/planner"
)

// The Markdown view of a plan (plan -markdown, show -markdown): a plan as a
// pull-request comment. It renders the same plan value as the text view,
// whose field values are already masked ("(sensitive value)"); it adds no
// value of its own that the plan does not hold.

// markdownLimit is GitHub's limit on a comment's body, in characters.
const markdownLimit = 65536

// planMarkdown shows the plan as GitHub-flavoured Markdown.
type planMarkdown struct {
	viewBase
	// planFile is where the full plan is (plan -out FILE, show FILE), for
	// the note of a cut plan; "" when the plan is not saved.
	planFile string
}

func (v planMarkdown) Planned(p *planner.Plan) error {
	_, err := io.WriteString(v.s.Out, renderPlanMarkdown(p, v.planFile, markdownLimit))
	return err
}

// Saved prints nothing: stdout is the comment's body.
func (planMarkdown) Saved(string) {}

// renderPlanMarkdown renders p in at most limit characters: the heading,
// summary line, warnings, recovery and images always; then one section per
// service, as many whole sections as fit, with a note saying what was left
// out and where the full plan is.
func renderPlanMarkdown(p *planner.Plan, planFile string, limit int) string {
	head := markdownHead(p)
	sections := markdownServices(p)
	var b strings.Builder
	b.WriteString(head)
	used := utf8.RuneCountInString(head)
	for i, sec := range sections {
		n := utf8.RuneCountInString(sec.text)
		// The note, sized for the sections left (its length barely depends
		// on the numbers, so measure it as if this one were left out too).
		rest := 0
		for _, s := range sections[i:] {
			rest += utf8.RuneCountInString(s.text)
		}
		note := markdownCutNote(len(sections)-i, len(sections), rest, planFile)
		last := i == len(sections)-1
		if used+n <= limit && (last || used+n+utf8.RuneCountInString(note) <= limit) {
			b.WriteString(sec.text)
			used += n
			continue
		}
		b.WriteString(note)
		return b.String()
	}
	return b.String()
}

func markdownCutNote(left, total, chars int, planFile string) string {
	where := "save the plan with `berth plan -out PLANFILE` and run `berth show PLANFILE`"
	if planFile != "" {
		where = "run " + codeSpan("berth show "+planFile)
	}
	return fmt.Sprintf("\n---\n\n> [!NOTE]\n> This plan was cut to fit a comment (%s characters): %d of %s (%s characters) %s left out. "+
		"For the full plan, %s.\n", groupThousands(markdownLimit), left, plural(total, "service"), groupThousands(chars), isAre(left), where)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// markdownHead is everything before the services: the heading, summary
// line, plan ID, warnings, recovery, image transfers and network work.
func markdownHead(p *planner.Plan) string {
	var b strings.Builder
	title := "berth plan"
	if p.Destroy {
		title = "berth destroy plan"
	}
	fmt.Fprintf(&b, "### %s for project %s\n\n", title, codeSpan(p.Project))
	fmt.Fprintf(&b, "**%s**\n\n", mdEscape(p.SummaryLine()))
	if p.ID != "" {
		fmt.Fprintf(&b, "Plan %s\n\n", codeSpan(p.ID))
	}
	if len(p.Warnings) > 0 {
		b.WriteString("#### Warnings\n\n")
		for _, w := range p.Warnings {
			b.WriteString("- " + mdEscape(oneLine(w)) + "\n")
		}
		b.WriteString("\n")
	}
	if p.Interrupted != nil {
		in := p.Interrupted
		verb := "rolled back: the containers it replaced are restored"
		if in.Mode == planner.RecoverForward {
			verb = "finished: the old containers it replaced are removed"
		}
		who := ""
		if in.Holder != "" {
			who = " by " + mdEscape(in.Holder)
		}
		fmt.Fprintf(&b, "#### Recovery\n\nAn interrupted apply (%s%s) was found. It will be %s first.\n\n", codeSpan(in.ApplyID), who, verb)
		b.WriteString("| | container | node | action | reason |\n|---|---|---|---|---|\n")
		for i := range p.Recovery {
			a := &p.Recovery[i]
			name := a.Container
			if a.Old != nil {
				name = a.Old.Name
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", codeSpan(a.Symbol()), cell(name), cell(a.Node), cell(string(a.Kind)), cell(a.Reason))
		}
		b.WriteString("\n")
	}
	if len(p.Images) > 0 {
		b.WriteString("#### Images (before any container changes)\n\n| transfer | image | size | nodes | for |\n|---|---|---|---|---|\n")
		for _, ia := range p.Images {
			name := ia.Image
			if ia.ID != "" {
				name += " " + planner.ShortID(ia.ID)
			}
			size := ""
			if ia.Size > 0 {
				size = planner.HumanBytes(ia.Size)
			}
			nodes := strings.Join(ia.Nodes, ", ")
			if ia.Kind == planner.ImageBuild {
				nodes = "the local engine"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(ia.Kind), codeCell(name), cell(size), cell(nodes), cell(strings.Join(ia.Services, ", ")))
		}
		b.WriteString("\n")
	}
	if len(p.Networks) > 0 {
		b.WriteString("#### Networks (created before any container changes, removed once their containers are gone)\n\n" +
			"| | network | node | action | reason |\n|---|---|---|---|---|\n")
		for i := range p.Networks {
			na := &p.Networks[i]
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", codeSpan(na.Symbol()), codeCell(na.Name), cell(na.Node), cell(string(na.Kind)), cell(na.Reason))
		}
		b.WriteString("\n")
	}
	if lines := p.Ingress.ChangeLines(); len(lines) > 0 {
		b.WriteString("#### Ingress routes (pushed to every ingress proxy)\n\n")
		for _, l := range lines {
			b.WriteString("- " + mdEscape(l) + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

type markdownSection struct {
	service string
	text    string
}

// markdownServices is one section per service with actions, in the plan's
// order: a heading, a table of its actions, and the field diffs of each
// action in a collapsed <details>.
func markdownServices(p *planner.Plan) []markdownSection {
	var out []markdownSection
	idx := map[string]int{}
	var actions [][]*planner.Action
	for i := range p.Actions {
		a := &p.Actions[i]
		j, ok := idx[a.Service]
		if !ok {
			j = len(actions)
			idx[a.Service] = j
			actions = append(actions, nil)
			out = append(out, markdownSection{service: a.Service})
		}
		actions[j] = append(actions[j], a)
	}
	for j := range out {
		out[j].text = markdownService(p, out[j].service, actions[j])
	}
	return out
}

func markdownService(p *planner.Plan, name string, acts []*planner.Action) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#### service %s\n\n", codeSpan(name))
	if about := markdownServiceAbout(p, name); about != "" {
		b.WriteString(about + "\n\n")
	}
	b.WriteString("| | replica | node | action | reason | batch |\n|---|---|---|---|---|---|\n")
	for _, a := range acts {
		where := a.Node
		if a.Old != nil && a.Old.Node != a.Node {
			where = a.Old.Node + " → " + a.Node
		}
		reason := a.Reason
		if a.Drift {
			reason = "[drift] " + reason
		}
		if a.OrderReason != "" {
			reason += " (" + a.Order + ": " + a.OrderReason + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d |\n", codeSpan(a.Symbol()), cell(a.Service+"."+strconv.Itoa(a.Replica)),
			cell(where), cell(actionVerb(a)), cell(reason), a.Batch)
	}
	b.WriteString("\n")
	for _, a := range acts {
		if len(a.Changes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "<details><summary>%s.%d on %s: %s changed</summary>\n\n",
			html.EscapeString(a.Service), a.Replica, html.EscapeString(a.Node), plural(len(a.Changes), "field"))
		var d strings.Builder
		for _, c := range a.Changes {
			fmt.Fprintf(&d, "- %s: %s\n+ %s: %s\n", c.Field, oneLine(c.Old), c.Field, oneLine(c.New))
			if c.Cause != "" && !strings.HasPrefix(a.Reason, c.Field+": ") {
				fmt.Fprintf(&d, "  (%s)\n", oneLine(c.Cause))
			}
		}
		b.WriteString(codeBlock("diff", d.String()))
		b.WriteString("\n</details>\n\n")
	}
	return b.String()
}

// markdownServiceAbout is the service's resolved state in one line.
func markdownServiceAbout(p *planner.Plan, name string) string {
	for _, s := range p.Services {
		if s.Name != name {
			continue
		}
		parts := []string{"image " + codeSpan(s.Image), plural(s.Replicas, "replica")}
		if len(s.Ports) > 0 {
			var ps []string
			for _, pt := range s.Ports {
				x := pt.String()
				if pt.Assigned {
					x += " (assigned)"
				}
				ps = append(ps, x)
			}
			parts = append(parts, "ports "+mdEscape(strings.Join(ps, ", ")))
		}
		if len(s.Placement) > 0 {
			counts := map[string]int{}
			for _, n := range s.Placement {
				counts[n]++
			}
			var ns []string
			for _, n := range slices.Sorted(maps.Keys(counts)) {
				if counts[n] == 1 {
					ns = append(ns, n)
				} else {
					ns = append(ns, fmt.Sprintf("%s (%d)", n, counts[n]))
				}
			}
			parts = append(parts, "on "+mdEscape(strings.Join(ns, ", ")))
		}
		if u := p.Unchanged[name]; u > 0 {
			parts = append(parts, fmt.Sprintf("%d unchanged", u))
		}
		return strings.Join(parts, "; ")
	}
	if p.Destroy {
		return "destroy"
	}
	return "not in the configuration"
}

func actionVerb(a *planner.Action) string {
	switch a.Kind {
	case planner.Update:
		return "update in place"
	case planner.Replace:
		return "replace, " + a.Order
	}
	return string(a.Kind)
}

// groupThousands writes n with commas: 65,536.
func groupThousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// oneLine folds a value onto one line, so it cannot end a table row or a
// diff line early.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", `\n`, "\n", `\n`, "\r", `\r`).Replace(s)
}

// mdEscape escapes the characters that would make text Markdown or HTML.
func mdEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '#', '|', '~', '&':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cell is text for a table cell.
func cell(s string) string { return mdEscape(oneLine(s)) }

// codeCell is a code span in a table cell: a pipe must still be escaped
// there (GitHub splits the row before it parses the span).
func codeCell(s string) string {
	return strings.ReplaceAll(codeSpan(oneLine(s)), "|", `\|`)
}

// codeSpan is s as inline code, fenced with more backticks than s holds in
// a row.
func codeSpan(s string) string {
	s = oneLine(s)
	if s == "" {
		return "` `"
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// codeBlock is a fenced code block whose fence no line of text can close.
func codeBlock(lang, text string) string {
	fence := strings.Repeat("`", max(3, longestRun(text, '`')+1))
	return fence + lang + "\n" + text + fence + "\n"
}

func longestRun(s string, c rune) int {
	best, n := 0, 0
	for _, r := range s {
		if r == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}
