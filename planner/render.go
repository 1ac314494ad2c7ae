package planner

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Symbol is the one- to three-character mark of an action, as in Terraform.
func (a *Action) Symbol() string {
	switch a.Kind {
	case Create:
		return "+"
	case Update:
		return "~"
	case Replace:
		if a.Order == StopFirst {
			return "-/+"
		}
		return "+/-"
	case Delete:
		return "-"
	case Restore:
		return "<"
	case Discard:
		return "x"
	}
	return "?"
}

// Summary counts actions as Terraform does.
func (p *Plan) Summary() (add, change, replace, destroy int) {
	for _, a := range p.Actions {
		switch a.Kind {
		case Create:
			add++
		case Update:
			change++
		case Replace:
			replace++
		case Delete:
			destroy++
		}
	}
	return
}

// SummaryLine is the plan's last line: "No changes. ..." only when the plan
// changes nothing and every node was read; otherwise the counts, and the
// nodes that were not read.
func (p *Plan) SummaryLine() string {
	down := p.Unreachable()
	if p.Empty() && len(down) == 0 {
		return "No changes. The cluster matches the configuration."
	}
	add, change, repl, destroy := p.Summary()
	s := fmt.Sprintf("Plan: %d to add, %d to change, %d to replace, %d to destroy.", add, change, repl, destroy)
	if len(p.Networks) > 0 {
		var create, remove int
		for _, na := range p.Networks {
			if na.Kind == Delete {
				remove++
			} else {
				create++
			}
		}
		s += fmt.Sprintf(" Networks: %d to create, %d to remove.", create, remove)
	}
	switch len(down) {
	case 0:
	case 1:
		s += " Node " + down[0] + " is unreachable: this plan covers the other nodes only."
	default:
		s += " Nodes " + strings.Join(down, ", ") + " are unreachable: this plan covers the other nodes only."
	}
	return s
}

// TextPart is the kind of a piece of the plan's text that a view may style
// (colour, bold). It exists so that views style the plan from its data, not
// by parsing the rendered lines; it says nothing about how to style.
type TextPart int

// The parts passed to a Styler; every other piece of text is plain.
const (
	// PartSymbol is an action's symbol (Styler gets the action's kind).
	PartSymbol TextPart = iota + 1
	// PartHeading is a service's heading ("# service ...").
	PartHeading
	// PartSummary is the summary line ("Plan: ..." or "No changes. ...").
	PartSummary
	// PartBullet is the bullet of a warning.
	PartBullet
)

// Styler returns text, a piece of the plan's text of the given part, as it
// is to be written (wrapped in escape codes, say). kind is the action's kind
// for PartSymbol, else "". It must not add or remove visible characters.
type Styler func(part TextPart, kind ActionKind, text string) string

// WriteText renders the plan for people: grouped by service, each action
// with its symbol, replica, node, reason and changed fields, and a summary
// line. Colour is the caller's business (see WriteStyledText).
func (p *Plan) WriteText(w io.Writer) error { return p.WriteStyledText(w, nil) }

// WriteStyledText renders the plan as WriteText does, passing each piece of
// text that a view may style through style (nil: none).
func (p *Plan) WriteStyledText(w io.Writer, style Styler) error {
	if style == nil {
		style = func(_ TextPart, _ ActionKind, text string) string { return text }
	}
	r := textRenderer{style: style}
	b := &r.b
	if p.RollbackTo != "" {
		fmt.Fprintf(b, "Rollback to apply %s: each service's container spec as that apply left it.\nThe configuration on disk is not changed: the next plan shows the difference from it.\n\n", p.RollbackTo)
	}
	if p.Empty() && len(p.Unreachable()) == 0 {
		b.WriteString(style(PartSummary, "", p.SummaryLine()) + "\n")
		r.writeWarnings(p)
		_, err := io.WriteString(w, b.String())
		return err
	}
	if p.Swarm != nil {
		p.writeSwarmText(&r)
		r.writeWarnings(p)
		b.WriteString(style(PartSummary, "", p.SummaryLine()) + "\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	if p.Interrupted != nil {
		in := p.Interrupted
		who := ""
		if in.Holder != "" {
			who = " by " + in.Holder
		}
		verb := "rolled back: the containers it replaced are restored"
		if in.Mode == RecoverForward {
			verb = "finished: the old containers it replaced are removed"
		}
		fmt.Fprintf(b, "An interrupted apply (%s%s) was found. It will be %s first.\n\n", in.ApplyID, who, verb)
		for i := range p.Recovery {
			a := &p.Recovery[i]
			fmt.Fprintf(b, "  %s %s on %s: %s\n", r.symbol(a), a.Old.Name, a.Node, a.Reason)
		}
		b.WriteString("\n")
	}
	if len(p.Images) > 0 {
		b.WriteString("Images (before any container changes):\n\n")
		for _, ia := range p.Images {
			b.WriteString("  " + ia.describe() + "\n")
		}
		b.WriteString("\n")
	}
	if len(p.Networks) > 0 {
		b.WriteString("Networks (created before any container changes, removed once their containers are gone):\n\n")
		for i := range p.Networks {
			na := &p.Networks[i]
			s := na.Symbol()
			fmt.Fprintf(b, "  %s network %s on %s: %s\n", style(PartSymbol, na.Kind, s)+strings.Repeat(" ", 3-len(s)), na.Name, na.Node, na.Reason)
		}
		b.WriteString("\n")
	}
	if len(p.Actions) > 0 {
		b.WriteString("berth will perform the following actions:\n")
		var cur string
		for i := range p.Actions {
			a := &p.Actions[i]
			if a.Service != cur {
				cur = a.Service
				b.WriteString("\n  " + style(PartHeading, "", p.serviceHeader(cur)) + "\n")
			}
			r.writeAction(a)
		}
		b.WriteString("\n")
	}
	r.writeIngress(p)
	r.writeWarnings(p)
	b.WriteString(style(PartSummary, "", p.SummaryLine()) + "\n")
	if len(p.Recovery) > 0 {
		var restore, discard int
		for _, a := range p.Recovery {
			if a.Kind == Restore {
				restore++
			} else {
				discard++
			}
		}
		fmt.Fprintf(b, "Recovery: %d to restore, %d to discard.\n", restore, discard)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// textRenderer is one rendering of a plan's text, with its styler.
type textRenderer struct {
	b     strings.Builder
	style Styler
}

// symbol is a's symbol, styled and padded to three characters.
func (r *textRenderer) symbol(a *Action) string {
	s := a.Symbol()
	return r.style(PartSymbol, a.Kind, s) + strings.Repeat(" ", max(0, 3-len(s)))
}

func (r *textRenderer) writeWarnings(p *Plan) {
	if len(p.Warnings) == 0 {
		return
	}
	r.b.WriteString("Warnings:\n")
	for _, w := range p.Warnings {
		r.b.WriteString("  " + r.style(PartBullet, "", "-") + " " + w + "\n")
	}
	r.b.WriteString("\n")
}

func (p *Plan) serviceHeader(name string) string {
	if IsIngressProxy(name) && !p.Destroy {
		what := "the ingress routers"
		if name == IngressEdgeService {
			what = "the ingress edges"
		}
		if p.Ingress != nil {
			return fmt.Sprintf("# service %q (%s): image %s; tls %s; on %s", name, what, p.Ingress.Image, p.Ingress.TLS, strings.Join(p.Ingress.NodeNames(), ", "))
		}
		return fmt.Sprintf("# service %q (%s): no ingress node", name, what)
	}
	for _, s := range p.Services {
		if s.Name != name {
			continue
		}
		var parts []string
		parts = append(parts, "image "+s.Image)
		parts = append(parts, fmt.Sprintf("%d replica%s", s.Replicas, plural(s.Replicas)))
		if len(s.Ports) > 0 {
			var ps []string
			for _, pt := range s.Ports {
				x := pt.String()
				if pt.Ingress() {
					x = fmt.Sprintf("%d:%d/%s (ingress%s)", pt.Published, pt.Target, pt.Protocol, strings.TrimRight(" "+pt.HostName+pt.Path, " "))
				}
				if pt.Assigned {
					x += " (assigned)"
				}
				ps = append(ps, x)
			}
			parts = append(parts, "ports "+strings.Join(ps, ", "))
		}
		if len(s.Placement) > 0 {
			parts = append(parts, "on "+placementString(s.Placement))
		}
		if u := p.Unchanged[name]; u > 0 {
			parts = append(parts, fmt.Sprintf("%d unchanged", u))
		}
		return fmt.Sprintf("# service %q: %s", name, strings.Join(parts, "; "))
	}
	if p.Destroy {
		return fmt.Sprintf("# service %q: destroy", name)
	}
	return fmt.Sprintf("# service %q: not in the configuration", name)
}

// placementString summarises replica placement as node(count), sorted.
func placementString(pl map[string]string) string {
	counts := map[string]int{}
	for _, n := range pl {
		counts[n]++
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(counts)) {
		if counts[n] == 1 {
			parts = append(parts, n)
		} else {
			parts = append(parts, fmt.Sprintf("%s (%d)", n, counts[n]))
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (a *Action) verb() string {
	switch a.Kind {
	case Create:
		return "create"
	case Update:
		return "update in place"
	case Replace:
		return "replace, " + a.Order
	case Delete:
		return "delete"
	}
	return string(a.Kind)
}

func (r *textRenderer) writeAction(a *Action) {
	b := &r.b
	where := a.Node
	if a.Old != nil && a.Old.Node != a.Node {
		where = a.Old.Node + " -> " + a.Node
	}
	drift := ""
	if a.Drift {
		drift = " [drift]"
	}
	fmt.Fprintf(b, "  %s %s.%d on %s (%s)%s: %s  [batch %d]\n", r.symbol(a), a.Service, a.Replica, where, a.verb(), drift, a.Reason, a.Batch)
	if a.OrderReason != "" {
		fmt.Fprintf(b, "        %s: %s\n", a.Order, a.OrderReason)
	}
	for _, c := range a.Changes {
		cause := ""
		if c.Cause != "" && !strings.HasPrefix(a.Reason, c.Field+": ") {
			cause = " (" + c.Cause + ")"
		}
		fmt.Fprintf(b, "        ~ %s: %s -> %s%s\n", c.Field, c.Old, c.New, cause)
	}
}

func (ia *ImageAction) describe() string {
	size := ""
	if ia.Size > 0 {
		size = " (" + HumanBytes(ia.Size) + ")"
	}
	name := ia.Image
	if ia.ID != "" {
		name += " " + ShortID(ia.ID)
	}
	switch ia.Kind {
	case "build":
		where := "the local engine"
		if len(ia.Nodes) > 0 {
			where += " (the engine of " + strings.Join(ia.Nodes, ", ") + ")"
		}
		return fmt.Sprintf("image %s will be built on %s for %s", ia.Image, where, strings.Join(ia.Services, ", "))
	case "send":
		if len(ia.Transfers) == 0 {
			return fmt.Sprintf("image %s%s will be sent to %s (the layers each node lacks: known once built)", name, size, strings.Join(ia.Nodes, ", "))
		}
		return fmt.Sprintf("image %s%s will be sent: %s", name, size, describeTransfers(ia.Transfers))
	case "pull":
		return fmt.Sprintf("image %s will be pulled on %s", ia.Image, strings.Join(ia.Nodes, ", "))
	case "tag":
		return fmt.Sprintf("image %s is on %s under another name: it will be tagged, nothing sent", name, strings.Join(ia.Nodes, ", "))
	}
	return ia.Kind + " " + ia.Image
}

// describeTransfers groups the nodes that receive the same thing, in the
// order of their first node: "1 MB to node1, node2 (1 of 2 layers), the
// whole image (105 MB) to node3".
func describeTransfers(ts []ImageTransfer) string {
	var keys []ImageTransfer
	nodes := map[ImageTransfer][]string{}
	for _, t := range ts {
		k := t
		k.Node = ""
		if nodes[k] == nil {
			keys = append(keys, k)
		}
		nodes[k] = append(nodes[k], t.Node)
	}
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		to := strings.Join(nodes[k], ", ")
		switch {
		case k.Path == PathWhole && k.Bytes > 0:
			parts = append(parts, fmt.Sprintf("the whole image (%s) to %s", HumanBytes(k.Bytes), to))
		case k.Path == PathWhole:
			parts = append(parts, "the whole image to "+to)
		case k.Layers == 0:
			parts = append(parts, fmt.Sprintf("only its config to %s (it holds all %d layers)", to, k.Of))
		case k.Bytes > 0:
			parts = append(parts, fmt.Sprintf("about %s to %s (%d of %d layers)", HumanBytes(k.Bytes), to, k.Layers, k.Of))
		default:
			parts = append(parts, fmt.Sprintf("%d of %d layers to %s", k.Layers, k.Of, to))
		}
	}
	return strings.Join(parts, ", ")
}

// HumanBytes is a byte count in decimal units ("41 MB"), as plans and
// progress show sizes.
func HumanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatFloat(float64(n)/1e9, 'f', 1, 64) + " GB"
	case n >= 1e6:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 0, 64) + " MB"
	case n >= 1e3:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 0, 64) + " kB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// writeIngress renders the route changes of each ingress node, a line per
// route that changes: "ingress on node1: web :18080 -> 6 upstreams, +2 -2".
func (r *textRenderer) writeIngress(p *Plan) {
	ip := p.Ingress
	if !ip.Changed() {
		return
	}
	b := &r.b
	b.WriteString("Ingress routes (pushed to every ingress proxy):\n\n")
	for _, l := range ip.ChangeLines() {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("\n")
}

// ChangeLines are the route changes of each ingress node, a line per route
// that changes: "ingress on node1: web :18080 -> 6 upstreams, +2 -2"; none
// when no node's routes change.
func (ip *IngressPlan) ChangeLines() []string {
	if !ip.Changed() {
		return nil
	}
	var out []string
	for _, n := range ip.Nodes {
		if !n.Changed {
			continue
		}
		live := map[RouteKey]Route{}
		for _, lr := range n.Live {
			live[lr.Key()] = lr
		}
		note := ""
		if !n.Loaded {
			note = " (new routes)"
		}
		wrote := false
		for _, rt := range ip.Routes {
			old, had := live[rt.Key()]
			delete(live, rt.Key())
			add, rm := DiffRoutes(routeList(old, had), []Route{rt})
			if had && add == 0 && rm == 0 && n.Loaded && old.Service == rt.Service {
				continue
			}
			out = append(out, fmt.Sprintf("ingress on %s: %s -> %d upstream%s, +%d -%d%s", n.Node, rt, len(rt.Upstreams), plural(len(rt.Upstreams)), add, rm, note))
			wrote = true
		}
		for _, lr := range n.Live {
			if _, gone := live[lr.Key()]; gone {
				out = append(out, fmt.Sprintf("ingress on %s: %s removed, -%d", n.Node, lr, len(lr.Upstreams)))
				wrote = true
			}
		}
		if !wrote {
			out = append(out, fmt.Sprintf("ingress on %s: tls %s", n.Node, ip.TLS))
		}
	}
	return out
}

func routeList(r Route, ok bool) []Route {
	if !ok {
		return nil
	}
	return []Route{r}
}

// NodeNames are the ingress nodes' names.
func (ip *IngressPlan) NodeNames() []string {
	var out []string
	for _, n := range ip.Nodes {
		out = append(out, n.Node)
	}
	return out
}
