package swarmexec

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner/swarmplan"
)

// Status is what `berth status` shows of a Swarm project: like `docker
// service ls` and `docker service ps`.
type Status struct {
	Manager string `json:"manager"`
	// Skipped are the managers tried before Manager, with why.
	Skipped  []string        `json:"skipped,omitempty"`
	Network  string          `json:"network"`
	Services []ServiceStatus `json:"services"`
}

// ServiceStatus is one Swarm service of the project.
type ServiceStatus struct {
	Service   string `json:"service"`
	Name      string `json:"swarm_name"`
	Image     string `json:"image"`
	Desired   int    `json:"desired"`
	Running   int    `json:"running"`
	InConfig  bool   `json:"in_config"`
	UpdateMsg string `json:"update,omitempty"`
	// Ports are "published:target/protocol (mode)".
	Ports []string     `json:"ports,omitempty"`
	Tasks []TaskStatus `json:"tasks"`
}

// TaskStatus is one task that Swarm wants running.
type TaskStatus struct {
	Slot  int    `json:"slot"`
	Node  string `json:"node"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// GetStatus reads the project's services and their tasks through the first
// manager that answers.
func GetStatus(ctx context.Context, cfg *config.Config, opts executor.Options) (*Status, error) {
	m, err := connect(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	live, err := gather(ctx, cfg, m)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, n := range live.Nodes {
		names[n.ID] = n.Description.Hostname
		for _, c := range cfg.Nodes {
			if c.Address == n.Status.Addr {
				names[n.ID] = c.Name
			}
		}
	}
	st := &Status{Manager: m.name, Skipped: m.tried, Network: swarmplan.NetworkName(cfg.Project.Name)}
	for _, s := range live.Services {
		ss := ServiceStatus{Service: s.Spec.Labels[swarmplan.LabelService], Name: s.Spec.Name,
			Image: s.Spec.Labels[swarmplan.LabelImage], InConfig: cfg.Service(s.Spec.Labels[swarmplan.LabelService]) != nil}
		if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
			ss.Desired = int(*r.Replicas)
		}
		if us := s.UpdateStatus; us != nil {
			ss.UpdateMsg = fmt.Sprintf("%s: %s", us.State, us.Message)
		}
		if e := s.Spec.EndpointSpec; e != nil {
			for _, p := range e.Ports {
				ss.Ports = append(ss.Ports, fmt.Sprintf("%d:%d/%s (%s)", p.PublishedPort, p.TargetPort, p.Protocol, p.PublishMode))
			}
		}
		ss.Tasks = []TaskStatus{}
		for _, t := range live.Tasks {
			if t.ServiceID != s.ID || t.DesiredState != swarm.TaskStateRunning {
				continue
			}
			if t.Status.State == swarm.TaskStateRunning {
				ss.Running++
			}
			node := names[t.NodeID]
			if node == "" {
				node = "-"
			}
			ss.Tasks = append(ss.Tasks, TaskStatus{Slot: t.Slot, Node: node, State: string(t.Status.State), Error: t.Status.Err})
		}
		slices.SortFunc(ss.Tasks, func(a, b TaskStatus) int { return cmp.Or(cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.Node, b.Node)) })
		st.Services = append(st.Services, ss)
	}
	slices.SortFunc(st.Services, func(a, b ServiceStatus) int { return cmp.Compare(a.Service, b.Service) })
	return st, nil
}
