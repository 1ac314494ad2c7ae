package planner

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// This file is the project network: on every node where the project runs a
// replica, a user-defined bridge network berth-<project> that every replica
// joins (and no other network), with its service name and replica name as
// DNS aliases. Docker's own rules keep other bridges (other projects, the
// default bridge) from reaching it.

// KindNetwork is the berth.kind label of the project network.
const KindNetwork = "network"

// NetworkName is the name of the project's network on every node.
func NetworkName(project string) string { return "berth-" + project }

// NetworkLabels are the labels the project network is created with.
func NetworkLabels(project string) map[string]string {
	return map[string]string{LabelProject: project, LabelKind: KindNetwork}
}

// Aliases are a replica's DNS names on the project network: its service's
// name and "<service>-<index>".
func Aliases(service string, replica int) []string {
	return []string{service, service + "-" + strconv.Itoa(replica)}
}

// Network is a Docker network on a node.
type Network struct {
	ID     string            `json:"id"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Containers are the IDs of the containers attached to it (running
	// ones: Docker's active endpoints), sorted.
	Containers []string `json:"containers,omitempty"`
}

// NetworkAttachment is a network a container is configured on.
type NetworkAttachment struct {
	Name string `json:"name"`
	// Aliases are the container's DNS aliases there, as the engine reports
	// them (older engines add the short container ID).
	Aliases []string `json:"aliases,omitempty"`
}

// NetworkAction is network work on one node: a network created before any
// container changes, or removed once the containers on it are gone (at the
// commit).
type NetworkAction struct {
	Kind   ActionKind `json:"kind"` // Create or Delete
	Name   string     `json:"name"`
	Node   string     `json:"node"`
	ID     string     `json:"id,omitempty"` // the network deleted
	Reason string     `json:"reason"`
}

// NetworkRepair is the network part of an in-place update: networks the
// container leaves and the network it joins (with Aliases). A network in
// both lists is left, then joined again (to set its aliases).
type NetworkRepair struct {
	Disconnect []string `json:"disconnect,omitempty"`
	Connect    string   `json:"connect,omitempty"`
	Aliases    []string `json:"aliases,omitempty"`
}

// Symbol is the network action's mark.
func (na *NetworkAction) Symbol() string {
	if na.Kind == Delete {
		return "-"
	}
	return "+"
}

// networkDrift compares the networks a container is on with the project
// network and its aliases. It returns the changed fields, the repair and a
// reason; nil repair when nothing differs or when the container's networks
// are not known (a live state from before berth read them).
func networkDrift(c *Container, network string, aliases []string) ([]FieldChange, *NetworkRepair, string) {
	if c.Networks == nil || network == "" {
		return nil, nil, ""
	}
	var names []string
	var on *NetworkAttachment
	for i := range c.Networks {
		names = append(names, c.Networks[i].Name)
		if c.Networks[i].Name == network {
			on = &c.Networks[i]
		}
	}
	slices.Sort(names)
	r := &NetworkRepair{}
	var changes []FieldChange
	var why []string
	for _, n := range names {
		if n != network {
			r.Disconnect = append(r.Disconnect, n)
		}
	}
	others := strings.Join(r.Disconnect, ", ")
	switch {
	case on == nil && len(r.Disconnect) > 0:
		why = append(why, "the container is on "+others+" instead of network "+network)
	case on == nil:
		why = append(why, "the container is not on network "+network)
	case len(r.Disconnect) > 0:
		why = append(why, "the container is on "+others+" besides network "+network)
	}
	if on == nil {
		r.Connect, r.Aliases = network, aliases
	}
	if len(why) > 0 {
		changes = append(changes, FieldChange{Field: "networks", Old: listString(orEmpty(names)), New: listString([]string{network})})
	}
	if on != nil {
		var missing []string
		for _, a := range aliases {
			if !slices.Contains(on.Aliases, a) {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			// Docker sets aliases when a container joins: leave and join.
			r.Disconnect = append([]string{network}, r.Disconnect...)
			r.Connect, r.Aliases = network, aliases
			have := slices.DeleteFunc(slices.Clone(on.Aliases), func(a string) bool { return !slices.Contains(aliases, a) })
			changes = append(changes, FieldChange{Field: "network_aliases", Old: listString(orEmpty(have)), New: listString(aliases)})
			why = append(why, "its aliases on network "+network+" lack "+strings.Join(missing, ", "))
		}
	}
	if len(changes) == 0 {
		return nil, nil, ""
	}
	return changes, r, "drift: " + strings.Join(why, "; ")
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// planNetworks decides the network work on each reachable node: create the
// project network where a replica runs after this plan and it is missing;
// remove it where none runs (once its containers are gone), unless
// containers outside the project are attached to it.
func (p *planState) planNetworks() hcl.Diagnostics {
	name := NetworkName(p.project)
	need := map[string]bool{}
	if !p.opts.Destroy {
		for _, sp := range p.plan.Services {
			for _, n := range sp.Placement {
				need[n] = true
			}
		}
	}
	var diags hcl.Diagnostics
	nodes := slices.Clone(p.nodes)
	slices.SortFunc(nodes, func(a, b *nodeView) int { return strings.Compare(a.name(), b.name()) })
	for _, n := range nodes {
		if !n.reachable {
			continue
		}
		var have *Network
		for i := range n.state.Networks {
			if n.state.Networks[i].Name == name {
				have = &n.state.Networks[i]
			}
		}
		switch {
		case have != nil && have.Labels[LabelProject] != p.project:
			if need[n.name()] {
				owner := "it has no berth.project label"
				if o, ok := have.Labels[LabelProject]; ok {
					owner = fmt.Sprintf("its berth.project label is %q", o)
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Network name taken",
					Detail: fmt.Sprintf("Node %s has a network named %s that berth did not create for project %q (%s). Remove or rename it: berth creates the project network under that name.",
						n.name(), name, p.project, owner)})
			}
		case need[n.name()] && have == nil:
			p.plan.Networks = append(p.plan.Networks, NetworkAction{Kind: Create, Name: name, Node: n.name(),
				Reason: "a replica of the project runs there"})
		case !need[n.name()] && have != nil:
			own := map[string]bool{}
			for _, c := range n.state.Containers {
				own[c.ID] = true
			}
			var others []string
			for _, id := range have.Containers {
				if !own[id] {
					others = append(others, p.containerName(n, id))
				}
			}
			if len(others) > 0 {
				p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
					"network %s on %s is left in place: containers outside the project are attached to it (%s)", name, n.name(), strings.Join(others, ", ")))
				continue
			}
			reason := "no replica of the project runs there after this plan"
			if p.opts.Destroy {
				reason = "the project is destroyed"
			}
			p.plan.Networks = append(p.plan.Networks, NetworkAction{Kind: Delete, Name: name, Node: n.name(), ID: have.ID, Reason: reason})
		}
	}
	return diags
}

// containerName names a container on n by ID, for messages: its name when
// the live state knows it, else its short ID.
func (p *planState) containerName(n *nodeView, id string) string {
	for _, c := range n.state.Foreign {
		if c.ID == id {
			return c.Name
		}
	}
	return ShortID(id)
}
