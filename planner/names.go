package planner

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// This file holds two checks of what the plan could see but placement does
// not decide: the container names it will take on each node, and node
// blocks that reach the same engine.

// checkNames fails the plan when a container name it takes on a node (a
// create, the new container of a replace or move, a restore of a container
// set aside) is held there by another container: one outside the project
// (Docker would refuse the create: "Conflict. The container name ... is
// already in use"), or one of the project's own that the plan does not
// remove or rename aside before.
func (p *planState) checkNames() hcl.Diagnostics {
	// freed: the batch (1-based) in which the plan removes a container
	// or renames it aside, by node and ID.
	freed := map[string]int{}
	for bi, b := range p.lv.batches {
		for _, a := range b {
			if k := oldKey(&a); k != "" && (a.Kind == Delete || a.Kind == Replace) {
				if _, ok := freed[k]; !ok {
					freed[k] = bi + 1
				}
			}
		}
	}
	var diags hcl.Diagnostics
	check := func(a *Action, batch int) {
		n := p.nodeByName[a.Node]
		if n == nil || !n.reachable {
			return
		}
		if d := p.nameHolder(a, n, batch, freed); d != nil {
			diags = append(diags, d)
		}
	}
	for i := range p.plan.Recovery {
		if a := &p.plan.Recovery[i]; a.Kind == Restore {
			check(a, 0)
		}
	}
	for bi, b := range p.lv.batches {
		for i := range b {
			if a := &b[i]; a.Kind == Create || a.Kind == Replace {
				check(a, bi+1)
			}
		}
	}
	return diags
}

// nameHolder returns the error for the container on n that holds the name
// a takes, or nil when the name is free by then.
func (p *planState) nameHolder(a *Action, n *nodeView, batch int, freed map[string]int) *hcl.Diagnostic {
	name := a.Container
	oldID := ""
	if a.Old != nil {
		oldID = a.Old.ID
	}
	var holder, what string
	for i := range n.state.Foreign {
		c := &n.state.Foreign[i]
		if c.Name != name {
			continue
		}
		owner := "a container not managed by berth"
		if proj := c.Labels[LabelProject]; proj != "" {
			owner = "a container of berth project " + strconv.Quote(proj)
		}
		holder = fmt.Sprintf("%s (ID %s, image %s, %s)", owner, ShortID(c.ID), c.Image, c.State)
		what = "Rename or remove that container (docker rename or docker rm on " + n.name() + "), or set another project name (project \"NAME\" {}) so that berth's containers are named NAME-SERVICE-N."
		break
	}
	if holder == "" {
		for i := range n.state.Containers {
			c := &n.state.Containers[i]
			if c.Name != name || c.ID == oldID {
				continue
			}
			if fb, ok := freed[n.name()+"\x00"+c.ID]; ok && fb < batch {
				continue
			}
			holder = fmt.Sprintf("a container of this project labelled as service %q replica %s (ID %s, %s): its name and labels disagree (changed outside berth)",
				c.Labels[LabelService], c.Labels[LabelReplica], ShortID(c.ID), c.State)
			what = "Remove or rename that container (docker rm or docker rename on " + n.name() + "), then plan again."
			break
		}
	}
	if holder == "" {
		return nil
	}
	verb := "create"
	switch a.Kind {
	case Replace:
		verb = "create the new container of"
	case Restore:
		verb = "restore"
	}
	d := &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Container name %s is taken on node %s", name, n.name()),
		Detail: fmt.Sprintf("berth would %s service %q replica %d as container %s on node %s, but %s already has that name there, so Docker would refuse it. %s",
			verb, a.Service, a.Replica, name, n.name(), holder, what),
	}
	if svc := p.cfg.Service(a.Service); svc != nil {
		r := svc.DeclRange
		d.Subject = &r
	}
	return d
}

// sharedEngines fails the plan when node blocks reach the same Docker
// engine (the same engine ID, gathered): berth would count it as two
// servers, placing a replica "on each" of a port only one can bind, and
// read its containers twice. Aliases (a host name and its IP, an
// ~/.ssh/config Host alias) hide this from validate, which compares
// addresses; the engine ID does not. A project with no service and no
// container places and finds nothing there, so it is not refused.
func (p *planState) sharedEngines() hcl.Diagnostics {
	byID := map[string][]*nodeView{}
	anything := len(p.cfg.Services) > 0
	for _, n := range p.nodes {
		if !n.reachable || n.state.Engine.ID == "" {
			continue
		}
		byID[n.state.Engine.ID] = append(byID[n.state.Engine.ID], n)
		if len(n.state.Containers) > 0 {
			anything = true
		}
	}
	if !anything {
		return nil
	}
	var diags hcl.Diagnostics
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		ns := byID[id]
		if len(ns) < 2 {
			continue
		}
		names := make([]string, len(ns))
		where := make([]string, len(ns))
		for i, n := range ns {
			names[i] = n.name()
			where[i] = fmt.Sprintf("%s (address %s)", n.name(), n.cfg.Address)
		}
		r := ns[1].cfg.DeclRange
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Nodes %s reach the same Docker engine", joinAnd(names)),
			Detail: fmt.Sprintf("The nodes %s answered with the same engine ID, %s: they are one Docker engine, and berth would place replicas on it as if on %d servers. "+
				"Remove all but one of these node blocks, or point them at different engines (address, port, docker_socket).",
				joinAnd(where), id, len(ns)),
			Subject: &r,
		})
	}
	return diags
}

func oldKey(a *Action) string {
	if a.Old == nil {
		return ""
	}
	return a.Old.Node + "\x00" + a.Old.ID
}

// joinAnd joins names as "a and b" or "a, b and c".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
