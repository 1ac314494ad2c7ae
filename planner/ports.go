package planner

import (
	"github.com/berth-dev/berth/config"
)

// assignPorts fills in published ports left out of the configuration: a port
// already assigned to the service's containers is kept; otherwise the lowest
// port of the auto range that is free on every reachable node and not used by
// any service.
func (p *planState) assignPorts(order []*config.Service) {
	p.desired = map[string]*serviceDesired{}
	taken := map[portKey]bool{}
	for _, n := range p.nodes {
		for _, h := range n.ports {
			taken[keyOf(h.HostPort)] = true
		}
	}
	for _, s := range p.cfg.Services {
		for _, pt := range s.Ports {
			if pt.Published != 0 {
				taken[portKey{pt.Protocol, pt.Published}] = true
			}
		}
	}
	resolved := map[string][]PortSpec{}
	// First keep what is already assigned, then assign new ones, so a new
	// service never takes a port an existing one keeps.
	for _, s := range order {
		ports := make([]PortSpec, len(s.Ports))
		for i, pt := range s.Ports {
			ports[i] = PortSpec{Target: pt.Target, Published: pt.Published, Protocol: pt.Protocol, HostIP: pt.HostIP,
				Mode: pt.Mode, HostName: pt.HostName, Path: pt.Path}
			if pt.Published == 0 && !pt.Ingress() {
				ports[i].Assigned = true
				if kept := p.keptPort(s.Name, pt); kept != 0 {
					ports[i].Published = kept
					taken[keyOf(ports[i].Host())] = true
				}
			}
		}
		resolved[s.Name] = ports
	}
	for _, s := range order {
		ports := resolved[s.Name]
		for i := range ports {
			if ports[i].Assigned && ports[i].Published == 0 {
				for c := config.AutoPortMin; c <= config.AutoPortMax; c++ {
					h := HostPort{Protocol: ports[i].Protocol, Port: c}
					if !taken[keyOf(h)] {
						ports[i].Published = c
						taken[keyOf(h)] = true
						break
					}
				}
			}
		}
		p.ports(s.Name, ports)
	}
}

func (p *planState) ports(service string, ports []PortSpec) {
	if p.resolvedPorts == nil {
		p.resolvedPorts = map[string][]PortSpec{}
	}
	p.resolvedPorts[service] = ports
}

// keptPort returns the host port the service's containers already publish
// for this port block's target, if it is in the auto range.
func (p *planState) keptPort(service string, pt config.Port) int {
	best, bestReplica := 0, 0
	for _, oc := range p.own[service] {
		for _, b := range oc.c.Ports {
			if b.ContainerPort == pt.Target && b.Protocol == pt.Protocol &&
				b.HostPort >= config.AutoPortMin && b.HostPort <= config.AutoPortMax {
				if best == 0 || oc.replica < bestReplica || (oc.replica == bestReplica && b.HostPort < best) {
					best, bestReplica = b.HostPort, oc.replica
				}
			}
		}
	}
	return best
}

// portKey is HostPort.Key as a map key that costs no string: protocol and
// port, regardless of the address.
type portKey struct {
	proto string
	port  int
}

func keyOf(h HostPort) portKey { return portKey{h.Protocol, h.Port} }
