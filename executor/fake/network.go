package fake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/berth-dev/berth/planner"
)

// fakeNetwork is a network on the fake engine. Containers are attached by
// their Networks; a running one is an active endpoint.
type fakeNetwork struct {
	id     string
	name   string
	labels map[string]string
}

// network finds a network by name or ID. f.mu must be held.
func (f *Node) network(nameOrID string) *fakeNetwork {
	for _, n := range f.networks {
		if n.name == nameOrID || n.id == nameOrID {
			return n
		}
	}
	return nil
}

// attached lists the IDs of the running containers on network name,
// sorted. f.mu must be held.
func (f *Node) attached(name string) []string {
	var out []string
	for _, c := range f.containers {
		if c.c.State == "running" && slices.ContainsFunc(c.c.Networks, func(a planner.NetworkAttachment) bool { return a.Name == name }) {
			out = append(out, c.c.ID)
		}
	}
	sort.Strings(out)
	return out
}

// AddNetwork puts a network on the node as is (as made by hand or by
// another tool) and returns its ID.
func (f *Node) AddNetwork(name string, labels map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addNetwork(name, labels)
}

func (f *Node) addNetwork(name string, labels map[string]string) string {
	f.seq++
	id := fakeID(f.name+" network", f.seq)
	f.networks[name] = &fakeNetwork{id: id, name: name, labels: maps.Clone(labels)}
	return id
}

func (f *Node) Networks(ctx context.Context, project string) ([]planner.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Networks", project); err != nil {
		return nil, err
	}
	var out []planner.Network
	for _, n := range f.networks {
		if n.labels[planner.LabelProject] != project && n.name != planner.NetworkName(project) {
			continue
		}
		out = append(out, planner.Network{ID: n.id, Name: n.name, Labels: maps.Clone(n.labels), Containers: f.attached(n.name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *Node) CreateNetwork(ctx context.Context, name string, labels map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "CreateNetwork", name); err != nil {
		return "", err
	}
	if f.network(name) != nil {
		return "", fmt.Errorf("create network %s: network with name %s already exists", name, name)
	}
	return f.addNetwork(name, labels), nil
}

func (f *Node) RemoveNetwork(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "RemoveNetwork", name); err != nil {
		return err
	}
	n := f.network(name)
	if n == nil {
		return f.notFound("network", name)
	}
	if len(f.attached(n.name)) > 0 {
		return fmt.Errorf("remove network %s: error while removing network: network %s id %s has active endpoints", name, n.name, n.id)
	}
	delete(f.networks, n.name)
	return nil
}

func (f *Node) ConnectNetwork(ctx context.Context, network, containerID string, aliases []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ConnectNetwork", network, containerID, strings.Join(aliases, ",")); err != nil {
		return err
	}
	n := f.network(network)
	if n == nil {
		return f.notFound("network", network)
	}
	c := f.find(containerID)
	if c == nil {
		return f.notFound("container", containerID)
	}
	if slices.ContainsFunc(c.c.Networks, func(a planner.NetworkAttachment) bool { return a.Name == n.name }) {
		return fmt.Errorf("connect container %s to network %s: endpoint with name %s already exists in network %s", containerID, network, c.c.Name, n.name)
	}
	c.c.Networks = append(c.c.Networks, planner.NetworkAttachment{Name: n.name, Aliases: sortedAliases(aliases)})
	sortAttachments(c.c.Networks)
	return nil
}

func (f *Node) DisconnectNetwork(ctx context.Context, network, containerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "DisconnectNetwork", network, containerID); err != nil {
		return err
	}
	n := f.network(network)
	if n == nil {
		return f.notFound("network", network)
	}
	c := f.find(containerID)
	if c == nil {
		return f.notFound("container", containerID)
	}
	before := len(c.c.Networks)
	c.c.Networks = slices.DeleteFunc(c.c.Networks, func(a planner.NetworkAttachment) bool { return a.Name == n.name })
	if len(c.c.Networks) == before {
		return fmt.Errorf("disconnect container %s from network %s: container %s is not connected to network %s", containerID, network, containerID, n.name)
	}
	return nil
}

// missingNetwork names the first network c is on that does not exist, as
// the engine refuses to start it. f.mu must be held.
func (f *Node) missingNetwork(c *fakeContainer) string {
	for _, a := range c.c.Networks {
		if f.network(a.Name) == nil {
			return a.Name
		}
	}
	return ""
}

// sortedAliases are aliases as the engine's inspect reports them: sorted.
func sortedAliases(aliases []string) []string {
	if len(aliases) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(aliases))
}

func sortAttachments(as []planner.NetworkAttachment) {
	slices.SortFunc(as, func(a, b planner.NetworkAttachment) int { return strings.Compare(a.Name, b.Name) })
}
