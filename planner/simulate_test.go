package planner

import (
	"maps"
	"slices"
	"strings"
)

// Simulate returns the live state that applying plan to live would leave,
// assuming every action succeeds. live is not modified. Tests use it to check
// that a plan converges: Make(cfg, Simulate(live, plan)) has no actions.
//
// It lives in test code on purpose: it is a model of what the executor does,
// good enough to test the planner, not a contract anything outside the
// planner's tests may rely on (the real effects come from gathering again).
func Simulate(live *Live, plan *Plan) *Live {
	out := cloneLive(live)
	for _, a := range plan.Recovery {
		st := out.Node(a.Node)
		if st == nil {
			continue
		}
		switch a.Kind {
		case Discard:
			dropContainer(st, a.Old.ID)
		case Restore:
			restoreContainer(st, a)
		}
	}
	for _, ia := range plan.Images {
		for _, n := range ia.Nodes {
			st := out.Node(n)
			if st == nil {
				continue
			}
			id := ia.ID
			if id == "" {
				id = "sha256:sim-" + ia.Image
			}
			st.Images = append(st.Images, Image{ID: id, Tags: []string{ia.Image}})
		}
	}
	for _, na := range plan.Networks {
		if st := out.Node(na.Node); st != nil && na.Kind == Create {
			st.Networks = append(st.Networks, Network{ID: "sim-net-" + na.Name + "-" + na.Node, Name: na.Name, Labels: NetworkLabels(plan.Project)})
		}
	}
	for _, a := range plan.Actions {
		switch a.Kind {
		case Create:
			addContainer(out.Node(a.Node), a.Spec)
		case Replace:
			if st := out.Node(a.Old.Node); st != nil {
				dropContainer(st, a.Old.ID)
			}
			addContainer(out.Node(a.Node), a.Spec)
		case Delete:
			if st := out.Node(a.Node); st != nil {
				dropContainer(st, a.Old.ID)
			}
		case Update:
			st := out.Node(a.Node)
			for i := range st.Containers {
				if st.Containers[i].ID == a.Old.ID {
					st.Containers[i].NanoCPUs = a.Spec.NanoCPUs
					st.Containers[i].MemoryBytes = a.Spec.MemoryBytes
					st.Containers[i].Restart = a.Spec.Restart
					if r := a.Network; r != nil {
						c := &st.Containers[i]
						c.Networks = slices.DeleteFunc(c.Networks, func(n NetworkAttachment) bool { return slices.Contains(r.Disconnect, n.Name) })
						if r.Connect != "" {
							c.Networks = append(c.Networks, NetworkAttachment{Name: r.Connect, Aliases: r.Aliases})
							slices.SortFunc(c.Networks, func(a, b NetworkAttachment) int { return strings.Compare(a.Name, b.Name) })
						}
					}
				}
			}
		}
	}
	simulateIngress(out, plan)
	// Networks go once their containers are gone (the commit).
	for _, na := range plan.Networks {
		if st := out.Node(na.Node); st != nil && na.Kind == Delete {
			st.Networks = slices.DeleteFunc(st.Networks, func(n Network) bool { return n.Name == na.Name })
		}
	}
	return out
}

// simulateIngress leaves every ingress node's proxy serving the plan's
// final table (commit pushes it), and nodes without a proxy with none.
func simulateIngress(out *Live, plan *Plan) {
	ingress := map[string]bool{}
	if plan.Ingress != nil {
		for _, n := range plan.Ingress.Nodes {
			ingress[n.Node] = true
		}
	}
	for name, st := range out.Nodes {
		if st == nil || !st.Reachable {
			continue
		}
		if !ingress[name] {
			st.Ingress = nil
			continue
		}
		routes := make([]Route, len(plan.Ingress.Routes))
		for i, r := range plan.Ingress.Routes {
			r.Upstreams = append([]string{}, r.Upstreams...)
			routes[i] = r
		}
		st.Ingress = &IngressState{Loaded: true, TLS: plan.Ingress.TLS, Routes: routes}
		for _, r := range routes {
			st.HostPorts = append(st.HostPorts, HostPort{Protocol: "tcp", IP: "0.0.0.0", Port: r.Port})
		}
	}
}

// dropContainer removes a container and the host ports its bindings held.
func dropContainer(st *NodeState, id string) {
	out := st.Containers[:0]
	for _, c := range st.Containers {
		if c.ID != id {
			out = append(out, c)
			continue
		}
		for _, b := range c.Ports {
			hp := st.HostPorts[:0]
			for _, h := range st.HostPorts {
				if h.Key() != b.Host().Key() {
					hp = append(hp, h)
				}
			}
			st.HostPorts = hp
		}
	}
	st.Containers = out
}

func addContainer(st *NodeState, spec *ContainerSpec) {
	if st == nil {
		return
	}
	c := Container{
		ID:          "sim-" + spec.Name + "-" + spec.Labels[LabelNode],
		Name:        spec.Name,
		Labels:      maps.Clone(spec.Labels),
		Image:       spec.Image,
		State:       "running",
		NanoCPUs:    spec.NanoCPUs,
		MemoryBytes: spec.MemoryBytes,
		Restart:     spec.Restart,
	}
	if spec.Network != "" {
		c.Networks = []NetworkAttachment{{Name: spec.Network, Aliases: spec.Aliases}}
	}
	for _, img := range st.Images {
		for _, t := range img.Tags {
			if NormalizeRef(t) == NormalizeRef(spec.Image) {
				c.ImageID = img.ID
			}
		}
	}
	for _, p := range spec.Ports {
		c.Ports = append(c.Ports, Binding(p))
		st.HostPorts = append(st.HostPorts, p.Host())
	}
	for _, v := range spec.Volumes {
		m := Mount{Type: "volume", Name: v.Source, Destination: v.Target}
		if v.Bind || strings.HasPrefix(v.Source, "/") {
			m = Mount{Type: "bind", Source: v.Source, Destination: v.Target}
		} else {
			addVolume(st, v.Source, spec.Labels)
		}
		c.Mounts = append(c.Mounts, m)
	}
	st.Containers = append(st.Containers, c)
}

// addVolume is the engine creating a named volume on first use, with the
// replica's labels (an existing volume keeps its own).
func addVolume(st *NodeState, name string, labels map[string]string) {
	for _, v := range st.Volumes {
		if v.Name == name {
			return
		}
	}
	l := map[string]string{}
	for _, k := range []string{LabelProject, LabelService, LabelReplica} {
		if labels[k] != "" {
			l[k] = labels[k]
		}
	}
	st.Volumes = append(st.Volumes, Volume{Name: name, Labels: l})
}
