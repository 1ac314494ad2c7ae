package planner

import (
	"slices"
	"strconv"

	"github.com/berth-dev/berth/config"
)

// FormatVersion is the version of the JSON plan document (plan -json, show
// -json and saved plan files). Bump the minor version for additions, the major
// for changes a reader must know about.
const FormatVersion = "1.2"

// ActionKind is the closed set of things a plan can do to a replica.
type ActionKind string

const (
	// Create starts a replica that does not exist.
	Create ActionKind = "create"
	// Update changes a running container in place (resources, restart policy).
	Update ActionKind = "update"
	// Replace swaps a container for a new one (order says which goes first).
	Replace ActionKind = "replace"
	// Delete removes a replica.
	Delete ActionKind = "delete"
	// Restore renames a container left aside by an interrupted apply back to
	// its name and starts it (recovery, before anything else).
	Restore ActionKind = "restore"
	// Discard removes a container left behind by an interrupted apply:
	// either a new container of a rolled-back apply, or an old one of an
	// apply being finished.
	Discard ActionKind = "discard"
)

// Order of a replace.
const (
	StartFirst = "start-first"
	StopFirst  = "stop-first"
)

// Plan is a plain value: what apply will do, and why. Apply consumes it and
// may refuse it (stale), but never decides anything the plan did not say.
type Plan struct {
	FormatVersion string `json:"format_version"`
	// ID is a hash of the plan's content: the same inputs give the same ID.
	ID      string `json:"id"`
	Project string `json:"project"`

	// Recovery holds the actions that finish or undo an interrupted apply;
	// they run before Actions.
	Recovery    []Action     `json:"recovery,omitempty"`
	Interrupted *Interrupted `json:"interrupted,omitempty"`

	// Images lists image work (build, send, pull) that runs before any
	// container changes.
	Images []ImageAction `json:"images,omitempty"`

	// Networks lists the project network's creation (before any container
	// changes) and removal (once its containers are gone) per node, in node
	// order.
	Networks []NetworkAction `json:"networks,omitempty"`

	// Actions in execution order. Batch numbers increase; actions with the
	// same batch run together (nodes in parallel).
	Actions []Action `json:"actions"`

	// Unchanged counts replicas that need nothing, per service.
	Unchanged map[string]int `json:"unchanged,omitempty"`

	// Services holds the resolved desired state of each service (placement
	// and assigned ports included), for show and status.
	Services []ServicePlan `json:"services"`

	// Nodes holds, per configured node, what the plan was made against:
	// reachable or not, and a fingerprint of its live state. Apply of a saved
	// plan re-gathers and refuses if any fingerprint differs.
	Nodes []NodeSnapshot `json:"nodes"`

	// Destroy is set for a plan that removes the whole project.
	Destroy bool `json:"destroy,omitempty"`

	// Swarm is set when the project's engine is Docker Swarm: Actions then
	// hold one action per Swarm service.
	Swarm *SwarmPlan `json:"swarm,omitempty"`

	// Ingress is the routing mesh: the route table of every ingress node,
	// live and to be. Nil when the project has no ingress node.
	Ingress *IngressPlan `json:"ingress,omitempty"`

	// Warnings explain things the user should know that change nothing
	// (a volume's data staying behind on a node, an unreachable node).
	Warnings []string `json:"warnings,omitempty"`

	// Revisions are the services' resolved specs, by service, which an
	// apply records for a later rollback. Not part of the JSON plan (a
	// saved plan file carries them beside it); nil for a destroy.
	Revisions map[string]*Revision `json:"-"`
	// RollbackTo is the apply whose revisions this plan restores (berth
	// rollback); empty for an ordinary plan.
	RollbackTo string `json:"rollback_to,omitempty"`
}

// ServicePlan is a service's resolved desired state.
type ServicePlan struct {
	Name      string   `json:"name"`
	Image     string   `json:"image"`
	Replicas  int      `json:"replicas"`
	DependsOn []string `json:"depends_on,omitempty"`
	// References are the other services' values the service uses
	// ("service.db.address"); each implies depends_on on that service.
	References []string `json:"references,omitempty"`
	// Placement maps replica index (as a string, for JSON) to node name.
	Placement map[string]string `json:"placement"`
	Ports     []PortSpec        `json:"ports,omitempty"`
	// Volumes are the named volumes the service mounts (a replica with no
	// container is placed where its volume is).
	Volumes []string `json:"volumes,omitempty"`
}

// Action is one change to one replica.
type Action struct {
	Kind ActionKind `json:"kind"`
	// Order is set for Replace: StartFirst or StopFirst.
	Order string `json:"order,omitempty"`
	// OrderReason explains a forced stop-first.
	OrderReason string `json:"order_reason,omitempty"`

	Service   string `json:"service"`
	Replica   int    `json:"replica"`
	Node      string `json:"node"`      // where the new container runs (or the deleted one ran)
	Container string `json:"container"` // the container's name

	// Old is the existing container an update, replace, delete, restore or
	// discard acts on.
	Old *ContainerRef `json:"old,omitempty"`
	// Spec is the container to create (create, replace) or the new settings
	// (update).
	Spec *ContainerSpec `json:"spec,omitempty"`

	// Ports are the host ports the action's container publishes: the new
	// container's for create, replace and update (as in Spec.Ports); for
	// delete and discard, those the removed container published (from the
	// live state); for restore, those the restored container publishes.
	// Always present, empty when there are none.
	Ports []PortSpec `json:"ports"`

	// Upstreams are the ingress routes the new container serves (apply
	// adds it to every proxy once healthy); OldUpstreams those of the old
	// container (removed from every proxy, and drained, before it stops).
	Upstreams    []Upstream `json:"upstreams,omitempty"`
	OldUpstreams []Upstream `json:"old_upstreams,omitempty"`

	Reason  string        `json:"reason"`
	Drift   bool          `json:"drift,omitempty"`
	Changes []FieldChange `json:"changes,omitempty"`
	// Network is set for an update that repairs the container's networks
	// (connect, disconnect).
	Network *NetworkRepair `json:"network,omitempty"`

	// Batch groups actions that run together; Step is the action's position
	// in the whole plan.
	Batch int `json:"batch"`
	Step  int `json:"step"`
}

// ContainerRef names an existing container.
type ContainerRef struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Node  string `json:"node"`
	Image string `json:"image,omitempty"`
	// ImageID is the image the container runs, needed if it must be restored.
	ImageID string `json:"image_id,omitempty"`
}

// FieldChange is one field that differs. Values of sensitive fields are
// "(sensitive)".
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
	// Cause names the reference whose value changed and the move that
	// changed it: "service.db.address: db.1 moves node1 -> node3".
	Cause string `json:"cause,omitempty"`
}

// ImageAction is image work done before container changes.
type ImageAction struct {
	// Kind: "build" (on the local engine), "send" (local engine to nodes over
	// SSH), "tag" (nodes hold the image ID under another name), "pull" (nodes
	// pull from a registry). See the Image* constants.
	Kind  string   `json:"kind"`
	Image string   `json:"image"`
	ID    string   `json:"id,omitempty"`
	Size  int64    `json:"size,omitempty"`
	Nodes []string `json:"nodes,omitempty"`
	// Services that need the image.
	Services []string `json:"services,omitempty"`
	// Transfers says, for a send, what travels to each of Nodes (in the
	// same order). Nil for other kinds, and for a send of an image still
	// to be built (what a node lacks is known once it is built).
	Transfers []ImageTransfer `json:"transfers,omitempty"`
}

// Image transfer paths (ImageTransfer.Path).
const (
	// PathLayers sends a docker save archive without the layers the node
	// already holds (it keeps the manifest and the image's config).
	PathLayers = "layers"
	// PathWhole sends the whole image: the node holds none of its layers,
	// or what it holds is not known.
	PathWhole = "whole"
)

// ImageTransfer is what a send carries to one node.
type ImageTransfer struct {
	Node string `json:"node"`
	// Path is PathLayers or PathWhole.
	Path string `json:"path"`
	// Layers of the image's Of layers are sent; the node holds the others.
	Layers int `json:"layers"`
	Of     int `json:"of"`
	// Bytes is about what travels: the sizes of the layers sent (the
	// image's size for a whole image whose layers are not known); 0 when
	// not known.
	Bytes int64 `json:"bytes"`
}

// Interrupted describes an apply that was killed before it finished.
type Interrupted struct {
	ApplyID string `json:"apply_id"`
	PlanID  string `json:"plan_id,omitempty"`
	Holder  string `json:"holder,omitempty"`
	// Mode is "rollback" (restore the old containers) or "forward" (keep the
	// new ones and remove the old).
	Mode string `json:"mode"`
}

// NodeSnapshot is what the plan saw of a node.
type NodeSnapshot struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Removed: the node is no longer configured; the plan removes the
	// project's containers there. It is never counted as unreachable.
	Removed     bool   `json:"removed,omitempty"`
	Fingerprint string `json:"fingerprint"`
	// Items are the lines the fingerprint hashes, so a stale-plan error can
	// say what changed.
	Items []string `json:"items,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return len(p.Actions) == 0 && len(p.Recovery) == 0 && len(p.Images) == 0 && len(p.Networks) == 0 && !p.Ingress.Changed() && p.Swarm.swarmEmpty()
}

// Unreachable lists the configured nodes the plan could not read, in name
// order (a removed node that could not be read is only warned about).
func (p *Plan) Unreachable() []string {
	var out []string
	for _, n := range p.Nodes {
		if !n.Reachable && !n.Removed {
			out = append(out, n.Name)
		}
	}
	return out
}

// MayBeMissing reports whether the plan leaves replicas of a service to
// unreachable nodes (they are unknown, so they may be missing), or, for a
// destroy, whether an unreachable node may still hold containers.
func (p *Plan) MayBeMissing() bool {
	if len(p.Unreachable()) == 0 {
		return false
	}
	if p.Destroy {
		return true
	}
	for _, s := range p.Services {
		if len(s.Placement) < s.Replicas {
			return true
		}
	}
	return false
}

// servicePlan is the service as the plan shows it.
func servicePlan(svc *config.Service, d *serviceDesired, placed []*nodeView) ServicePlan {
	sp := ServicePlan{Name: svc.Name, Image: d.image, Replicas: svc.Replicas, Placement: map[string]string{},
		Ports: d.ports, Volumes: serviceVolumes(svc)}
	if len(svc.DependsOn) > 0 {
		sp.DependsOn = slices.Sorted(slices.Values(svc.DependsOn))
	}
	sp.References = references(svc)
	for i := 1; i <= svc.Replicas; i++ {
		if placed[i] != nil {
			sp.Placement[strconv.Itoa(i)] = placed[i].name()
		}
	}
	return sp
}
