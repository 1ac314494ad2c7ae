package swarmexec

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner/swarmplan"
)

// gather reads, through the manager, the project's services and their
// tasks, the Swarm nodes, the networks and the configured images. Any
// error fails the gather: a manager that cannot be read is never "empty".
func gather(ctx context.Context, cfg *config.Config, m *manager) (*swarmplan.Live, error) {
	project := cfg.Project.Name
	cli := m.cli
	live := &swarmplan.Live{Manager: m.name, Errors: m.tried, Networks: map[string]string{}, Images: map[string]swarmplan.Image{}}
	var err error
	if live.Nodes, err = cli.NodeList(ctx, swarm.NodeListOptions{}); err != nil {
		return nil, fmt.Errorf("manager %s: list swarm nodes: %w", m.name, err)
	}
	f := filters.NewArgs(filters.Arg("label", swarmplan.LabelProject+"="+project))
	if live.Services, err = cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f}); err != nil {
		return nil, fmt.Errorf("manager %s: list services: %w", m.name, err)
	}
	if len(live.Services) > 0 {
		tf := filters.NewArgs()
		for _, s := range live.Services {
			tf.Add("service", s.ID)
		}
		if live.Tasks, err = cli.TaskList(ctx, swarm.TaskListOptions{Filters: tf}); err != nil {
			return nil, fmt.Errorf("manager %s: list tasks: %w", m.name, err)
		}
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("manager %s: list networks: %w", m.name, err)
	}
	for _, n := range nets {
		live.Networks[n.ID] = n.Name
		if n.Name == swarmplan.NetworkName(project) && n.Scope == "swarm" {
			live.NetworkID = n.ID
		}
	}
	for _, svc := range cfg.Services {
		if _, done := live.Images[svc.Image]; done || svc.Image == "" {
			continue
		}
		img, err := cli.ImageInspect(ctx, svc.Image)
		switch {
		case client.IsErrNotFound(err):
			live.Images[svc.Image] = swarmplan.Image{}
		case err != nil:
			return nil, fmt.Errorf("manager %s: inspect image %s: %w", m.name, svc.Image, err)
		default:
			live.Images[svc.Image] = swarmplan.Image{Found: true, ID: img.ID, RepoDigests: img.RepoDigests}
		}
	}
	return live, nil
}
