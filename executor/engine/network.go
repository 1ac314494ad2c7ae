package engine

import (
	"context"
	"sort"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/berth-dev/berth/planner"
)

// Networks lists the project's labelled networks and any network of the
// project network's name, then inspects each for its containers. One
// unfiltered list (the engine ANDs different filter keys, and its name
// filter matches substrings) is filtered here: one request, not two.
func (d *Node) Networks(ctx context.Context, project string) ([]planner.Network, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	name := planner.NetworkName(project)
	all, err := d.cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, d.wrap("list networks", err)
	}
	seen := map[string]bool{}
	var out []planner.Network
	for _, s := range all {
		mine := project != "" && s.Labels[planner.LabelProject] == project
		if seen[s.ID] || (!mine && s.Name != name) {
			continue
		}
		seen[s.ID] = true
		r, err := d.cli.NetworkInspect(ctx, s.ID, network.InspectOptions{})
		if errdefs.IsNotFound(err) {
			continue // removed between list and inspect
		}
		if err != nil {
			return nil, d.wrap("inspect network "+s.Name, err)
		}
		nw := planner.Network{ID: r.ID, Name: r.Name, Labels: r.Labels}
		for id := range r.Containers {
			nw.Containers = append(nw.Containers, id)
		}
		sort.Strings(nw.Containers)
		out = append(out, nw)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *Node) CreateNetwork(ctx context.Context, name string, labels map[string]string) (string, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	r, err := d.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels})
	if err != nil {
		return "", d.wrap("create network "+name, err)
	}
	return r.ID, nil
}

func (d *Node) RemoveNetwork(ctx context.Context, name string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap("remove network "+name, d.cli.NetworkRemove(ctx, name))
}

func (d *Node) ConnectNetwork(ctx context.Context, nw, containerID string, aliases []string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap("connect container "+containerID+" to network "+nw,
		d.cli.NetworkConnect(ctx, nw, containerID, &network.EndpointSettings{Aliases: aliases}))
}

func (d *Node) DisconnectNetwork(ctx context.Context, nw, containerID string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap("disconnect container "+containerID+" from network "+nw, d.cli.NetworkDisconnect(ctx, nw, containerID, false))
}

// networksOf reads a container's networks from its inspect, sorted by name.
func networksOf(nets map[string]*network.EndpointSettings) []planner.NetworkAttachment {
	out := make([]planner.NetworkAttachment, 0, len(nets))
	for name, e := range nets {
		a := planner.NetworkAttachment{Name: name}
		if e != nil && len(e.Aliases) > 0 {
			a.Aliases = append([]string(nil), e.Aliases...)
			sort.Strings(a.Aliases)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
