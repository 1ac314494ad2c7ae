package engine

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/planner"
)

// dockerConfig maps a resolved ContainerSpec to the engine's create request.
// It sets only what the spec says; everything else keeps the engine's and
// the image's defaults (so that nothing berth did not ask for shows up as a
// difference later).
func dockerConfig(spec *planner.ContainerSpec) (*container.Config, *container.HostConfig, error) {
	if spec == nil {
		return nil, nil, fmt.Errorf("no container spec")
	}
	if spec.Image == "" {
		return nil, nil, fmt.Errorf("container spec has no image")
	}
	cfg := &container.Config{
		Image:      spec.Image,
		Cmd:        spec.Command,
		Entrypoint: spec.Entrypoint,
		Labels:     spec.Labels,
		User:       spec.User,
		WorkingDir: spec.WorkingDir,
		Hostname:   spec.Hostname,
	}
	for _, e := range spec.Env {
		v := e.Value
		if e.Sensitive {
			v = e.Secret
		}
		cfg.Env = append(cfg.Env, e.Name+"="+v)
	}
	grace := spec.StopGraceSeconds
	cfg.StopTimeout = &grace

	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode(spec.NetworkMode),
		ExtraHosts:  spec.ExtraHosts,
		Resources: container.Resources{
			NanoCPUs: spec.NanoCPUs,
			Memory:   spec.MemoryBytes,
		},
	}
	rp, err := restartPolicy(spec.Restart)
	if err != nil {
		return nil, nil, err
	}
	hc.RestartPolicy = rp
	if spec.Network != "" {
		// Only the project network: not the default bridge too.
		hc.NetworkMode = container.NetworkMode(spec.Network)
	}

	for _, p := range spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			return nil, nil, fmt.Errorf("port %d: protocol %q is not tcp or udp", p.Target, proto)
		}
		port, err := nat.NewPort(proto, strconv.Itoa(p.Target))
		if err != nil {
			return nil, nil, fmt.Errorf("port %d: %w", p.Target, err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
			hc.PortBindings = nat.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		h := p.Host() // an ingress port binds its backend port
		b := nat.PortBinding{HostIP: h.IP}
		if h.Port > 0 {
			b.HostPort = strconv.Itoa(h.Port)
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
	}

	for _, v := range spec.Volumes {
		if v.Source == "" || v.Target == "" {
			return nil, nil, fmt.Errorf("volume %q:%q: source and target are required", v.Source, v.Target)
		}
		if v.Bind != strings.HasPrefix(v.Source, "/") {
			if v.Bind {
				return nil, nil, fmt.Errorf("bind mount %q: source must be an absolute path", v.Source)
			}
			return nil, nil, fmt.Errorf("volume %q: a named volume cannot start with /", v.Source)
		}
		if v.Bind {
			b := v.Source + ":" + v.Target
			if v.ReadOnly {
				b += ":ro"
			}
			hc.Binds = append(hc.Binds, b)
			continue
		}
		// A named volume is created by the engine on first use, with the
		// replica's labels: the gather finds it by them, and the planner
		// keeps a replica that has no container on the node holding its
		// data. An existing volume keeps its labels.
		m := mount.Mount{Type: mount.TypeVolume, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if l := volumeLabels(spec.Labels); l != nil {
			m.VolumeOptions = &mount.VolumeOptions{Labels: l}
		}
		hc.Mounts = append(hc.Mounts, m)
	}

	if h := spec.Health; h != nil && len(h.Cmd) > 0 {
		// http and tcp health are probed by berth itself and get no
		// engine healthcheck.
		cfg.Healthcheck = &container.HealthConfig{
			Test:        append([]string{"CMD"}, h.Cmd...),
			Interval:    time.Duration(h.IntervalMillis) * time.Millisecond,
			Timeout:     time.Duration(h.TimeoutMillis) * time.Millisecond,
			Retries:     h.Retries,
			StartPeriod: time.Duration(h.StartPeriodMillis) * time.Millisecond,
		}
	}
	return cfg, hc, nil
}

// networkingConfig gives the container its aliases on its network.
func networkingConfig(spec *planner.ContainerSpec) *network.NetworkingConfig {
	if spec.Network == "" {
		return nil
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		spec.Network: {Aliases: spec.Aliases},
	}}
}

// volumeLabels are the labels of a named volume a replica creates: its
// project, service and replica.
func volumeLabels(labels map[string]string) map[string]string {
	var out map[string]string
	for _, k := range []string{planner.LabelProject, planner.LabelService, planner.LabelReplica} {
		if v := labels[k]; v != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

func restartPolicy(s string) (container.RestartPolicy, error) {
	switch s {
	case "", "no":
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}, nil
	case "always":
		return container.RestartPolicy{Name: container.RestartPolicyAlways}, nil
	case "on-failure":
		return container.RestartPolicy{Name: container.RestartPolicyOnFailure}, nil
	case "unless-stopped":
		return container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}, nil
	}
	return container.RestartPolicy{}, fmt.Errorf("restart policy %q is not one of no, always, on-failure, unless-stopped", s)
}

// dockerUpdate is the in-place part of a spec: resources and restart policy.
// A memory limit is raised together with its swap limit (the engine's
// default at create is twice the memory), because the engine refuses a
// memory limit above the swap limit already set.
func dockerUpdate(spec *planner.ContainerSpec) container.UpdateConfig {
	u := container.UpdateConfig{
		Resources: container.Resources{
			NanoCPUs: spec.NanoCPUs,
			Memory:   spec.MemoryBytes,
		},
	}
	if spec.MemoryBytes > 0 {
		u.Resources.MemorySwap = 2 * spec.MemoryBytes
	}
	if rp, err := restartPolicy(spec.Restart); err == nil {
		u.RestartPolicy = rp
	}
	return u
}

func fromSummary(s container.Summary) planner.Container {
	c := planner.Container{
		ID:      s.ID,
		Labels:  s.Labels,
		Image:   s.Image,
		ImageID: s.ImageID,
		State:   string(s.State),
		Health:  healthFromStatus(s.Status),
	}
	if len(s.Names) > 0 {
		c.Name = strings.TrimPrefix(s.Names[0], "/")
	}
	for _, p := range s.Ports {
		if p.PublicPort == 0 {
			continue
		}
		c.Ports = append(c.Ports, planner.PortBinding{
			HostIP: p.IP, HostPort: int(p.PublicPort), ContainerPort: int(p.PrivatePort), Protocol: p.Type,
		})
	}
	sortPorts(c.Ports)
	if s.NetworkSettings != nil {
		c.IP = firstIP(s.NetworkSettings.Networks)
	}
	for _, m := range s.Mounts {
		c.Mounts = append(c.Mounts, planner.Mount{Type: string(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination})
	}
	return c
}

// healthFromStatus reads the health a container list shows in its status
// text ("Up 2 minutes (healthy)").
func healthFromStatus(status string) string {
	switch {
	case strings.HasSuffix(status, "(healthy)"):
		return "healthy"
	case strings.HasSuffix(status, "(unhealthy)"):
		return "unhealthy"
	case strings.HasSuffix(status, "(health: starting)"):
		return "starting"
	}
	return ""
}

func fromInspect(r container.InspectResponse) planner.Container {
	c := planner.Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), Image: "", ImageID: r.Image}
	if r.ContainerJSONBase == nil {
		return c
	}
	c.RestartCount = r.RestartCount
	if hc := r.HostConfig; hc != nil {
		// The fields Docker can update in place, compared by the planner.
		c.NanoCPUs = hc.NanoCPUs
		c.MemoryBytes = hc.Memory
		c.Restart = string(hc.RestartPolicy.Name)
	}
	if r.Config != nil {
		c.Labels = r.Config.Labels
		c.Image = r.Config.Image
	}
	if st := r.State; st != nil {
		c.State = string(st.Status)
		c.ExitCode = st.ExitCode
		if st.Health != nil && st.Health.Status != "none" {
			c.Health = string(st.Health.Status)
		}
	}
	var pm nat.PortMap
	if r.NetworkSettings != nil && len(r.NetworkSettings.Ports) > 0 {
		pm = r.NetworkSettings.Ports
	} else if r.HostConfig != nil {
		pm = r.HostConfig.PortBindings
	}
	for port, bs := range pm {
		for _, b := range bs {
			hp, _ := strconv.Atoi(b.HostPort)
			c.Ports = append(c.Ports, planner.PortBinding{
				HostIP: b.HostIP, HostPort: hp, ContainerPort: port.Int(), Protocol: port.Proto(),
			})
		}
	}
	sortPorts(c.Ports)
	if r.NetworkSettings != nil {
		c.IP = firstIP(r.NetworkSettings.Networks)
		c.Networks = networksOf(r.NetworkSettings.Networks)
		if c.IP == "" {
			c.IP = r.NetworkSettings.IPAddress //nolint:staticcheck // set by old engines
		}
	}
	for _, m := range r.Mounts {
		c.Mounts = append(c.Mounts, planner.Mount{Type: string(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination})
	}
	sort.Slice(c.Mounts, func(i, j int) bool { return c.Mounts[i].Destination < c.Mounts[j].Destination })
	return c
}

// firstIP returns the IPv4 address on the network that sorts first.
func firstIP(nets map[string]*network.EndpointSettings) string {
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if e := nets[n]; e != nil && e.IPAddress != "" {
			ip := e.IPAddress
			if _, err := netip.ParseAddr(ip); err == nil {
				return ip
			}
		}
	}
	return ""
}

func sortPorts(ps []planner.PortBinding) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.HostIP != b.HostIP {
			return a.HostIP < b.HostIP
		}
		return a.HostPort < b.HostPort
	})
}
