package planner

import (
	"encoding/json"
	"fmt"
	"strings"
)

// SwarmPlan is the part of a plan for a project whose engine is Docker
// Swarm (project { swarm { ... } }). Its actions are in Plan.Actions, one
// per Swarm service (Replica 0, Node "swarm", Container the Swarm service's
// name); this holds what applying them needs and what the plan relied on.
// The package planner/swarm makes it; planner only renders it.
type SwarmPlan struct {
	// Manager is the node the plan was made through (the first manager
	// that answered).
	Manager string `json:"manager"`
	// Network is the project's overlay network.
	Network SwarmNetwork `json:"network"`
	// NodeLabels are the node label changes placement needs, applied
	// before any service changes.
	NodeLabels []SwarmNodeLabel `json:"node_labels,omitempty"`
	// Services holds every service of the plan in apply order (depends_on
	// first; deletes last, dependents first), changed or not.
	Services []SwarmService `json:"services"`
	// Snapshot holds what the plan relied on, one item a line (service
	// version indexes, node availability, the node labels berth placed):
	// apply of a saved plan refuses it when any item changed.
	Snapshot []string `json:"snapshot"`
}

// SwarmNetwork is the project's overlay network.
type SwarmNetwork struct {
	Name string `json:"name"`
	ID   string `json:"id,omitempty"` // "" when it is to be created
	// EndpointMode is the services' endpoint mode: "dnsrr" (DNS round
	// robin; needs no IPVS) or "vip".
	EndpointMode string `json:"endpoint_mode"`
	Create       bool   `json:"create,omitempty"`
	// Remove is set by a destroy: the network goes once the services
	// are gone.
	Remove bool `json:"remove,omitempty"`
}

// SwarmNodeLabel is one node label berth sets or removes.
type SwarmNodeLabel struct {
	Kind   ActionKind `json:"kind"` // Create (set), Update (new value) or Delete (remove)
	Node   string     `json:"node"` // the node block's name, else the Swarm node's hostname
	NodeID string     `json:"node_id"`
	Label  string     `json:"label"`
	Value  string     `json:"value,omitempty"`
	Old    string     `json:"old,omitempty"`
	// Version is the node's version index when planned (for information:
	// a node's version moves on its own; apply checks the label's value).
	Version uint64 `json:"version"`
}

// SwarmService is one Swarm service of the plan.
type SwarmService struct {
	Service string `json:"service"`    // berth's name
	Name    string `json:"swarm_name"` // PROJECT-SERVICE
	// Kind is Create, Update or Delete; "" when nothing changes.
	Kind ActionKind `json:"kind,omitempty"`
	ID   string     `json:"id,omitempty"`
	// Version is the service's version index the plan was made against
	// (ServiceUpdate passes it, so a concurrent change is refused).
	Version uint64 `json:"version,omitempty"`
	// Spec is the desired Swarm service spec (Engine API JSON) with every
	// sensitive env value replaced by SwarmSecretPlaceholder; Secrets say
	// which, with their hashes.
	Spec    json.RawMessage `json:"spec,omitempty"`
	Secrets []SwarmSecret   `json:"secrets,omitempty"`
	// Image is the image as configured; ImagePin what the spec runs
	// (name@sha256:digest, or the image ID for an image without a
	// registry digest).
	Image    string `json:"image,omitempty"`
	ImagePin string `json:"image_pin,omitempty"`
	// Monitor is how long every task must stay running (and healthy) for
	// the service to count as converged.
	MonitorNanos int64 `json:"monitor_ns,omitempty"`
	Replicas     int   `json:"replicas"`
}

// SwarmSecretPlaceholder stands for a sensitive env value in a SwarmService
// spec; apply fills in the value from the configuration.
const SwarmSecretPlaceholder = "(sensitive value)"

// SwarmSecret is a sensitive env variable of a spec: its name and the hash
// of its value (SecretHash).
type SwarmSecret struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

// swarmEmpty reports whether the Swarm part changes nothing beyond Actions.
func (sp *SwarmPlan) swarmEmpty() bool {
	return sp == nil || (len(sp.NodeLabels) == 0 && !sp.Network.Create && !sp.Network.Remove)
}

// Symbol is the label change's mark.
func (l *SwarmNodeLabel) Symbol() string {
	a := Action{Kind: l.Kind}
	return a.Symbol()
}

// writeSwarmText renders a Swarm plan: network, node labels, one action per
// service with its field changes, warnings, summary.
func (p *Plan) writeSwarmText(r *textRenderer) {
	b := &r.b
	sp := p.Swarm
	fmt.Fprintf(b, "Swarm (through manager %s): network %s (overlay, attachable, endpoint mode %s)", sp.Manager, sp.Network.Name, sp.Network.EndpointMode)
	if sp.Network.Create {
		b.WriteString(": " + r.style(PartSymbol, Create, "+") + " to create")
	}
	if sp.Network.Remove {
		b.WriteString(": " + r.style(PartSymbol, Delete, "-") + " to remove once its services are gone")
	}
	b.WriteString("\n\n")
	if len(sp.NodeLabels) > 0 {
		b.WriteString("Node labels (set before any service changes, removed after them; placement constraints refer to them):\n\n")
		for i := range sp.NodeLabels {
			l := &sp.NodeLabels[i]
			s := l.Symbol()
			sym := r.style(PartSymbol, l.Kind, s) + strings.Repeat(" ", 3-len(s))
			switch l.Kind {
			case Delete:
				fmt.Fprintf(b, "  %s %s on %s\n", sym, l.Label, l.Node)
			case Update:
				fmt.Fprintf(b, "  %s %s on %s: %q -> %q\n", sym, l.Label, l.Node, l.Old, l.Value)
			default:
				fmt.Fprintf(b, "  %s %s=%s on %s\n", sym, l.Label, l.Value, l.Node)
			}
		}
		b.WriteString("\n")
	}
	if len(p.Actions) > 0 {
		b.WriteString("berth will perform the following actions:\n\n")
		for i := range p.Actions {
			a := &p.Actions[i]
			drift := ""
			if a.Drift {
				drift = " [drift]"
			}
			verb := string(a.Kind)
			if a.Kind == Update {
				verb = "update"
			}
			fmt.Fprintf(b, "  %s service %s (%s)%s: %s  [step %d]\n", r.symbol(a), a.Service, verb, drift, a.Reason, a.Step)
			if h := p.swarmHeader(a.Service); h != "" && a.Kind != Delete {
				b.WriteString("        " + h + "\n")
			}
			for _, c := range a.Changes {
				fmt.Fprintf(b, "        ~ %s: %s -> %s\n", c.Field, c.Old, c.New)
			}
		}
		b.WriteString("\n")
	}
}

// swarmHeader summarises a service's desired state in one line.
func (p *Plan) swarmHeader(name string) string {
	for _, s := range p.Services {
		if s.Name != name {
			continue
		}
		parts := []string{"image " + s.Image, fmt.Sprintf("%d replica%s", s.Replicas, plural(s.Replicas))}
		if len(s.Ports) > 0 {
			var ps []string
			for _, pt := range s.Ports {
				ps = append(ps, pt.String())
			}
			parts = append(parts, "ports "+strings.Join(ps, ", "))
		}
		return strings.Join(parts, "; ")
	}
	return ""
}
