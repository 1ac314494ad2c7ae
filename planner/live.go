package planner

import "github.com/berth-dev/berth/config"

// Live is the observed state of every configured node, as gathered by
// executor.Gather. The planner owns this type; the executor fills it in. It is
// plain data (JSON in golden tests) so that planning needs no I/O.
type Live struct {
	Nodes map[string]*NodeState `json:"nodes"`
}

// NodeState is what one node looked like when gathered.
type NodeState struct {
	Name string `json:"name"`
	// Reachable is false when the node could not be read; Error then says why.
	// An unreachable node is never read as "no containers".
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Removed marks a node that is no longer in the configuration but that
	// the project's last apply recorded (its audit records name the
	// project's nodes): the plan removes the project's containers there.
	// Address is the recorded address it was reached at.
	Removed bool   `json:"removed,omitempty"`
	Address string `json:"address,omitempty"`

	Engine EngineFacts `json:"engine"`

	// Containers holds every container carrying this project's labels
	// (berth.project), running or not, including ones renamed aside by an
	// interrupted apply.
	Containers []Container `json:"containers,omitempty"`
	// Foreign holds the containers outside this project that matter to a
	// plan (they are never touched): those that publish host ports or whose
	// name is in the project's namespace, and every container of another
	// berth project, the running ones with their CPU and memory
	// reservations (NanoCPUs, MemoryBytes) read from the engine.
	Foreign []Container `json:"foreign,omitempty"`
	// Images present on the node's engine.
	Images []Image `json:"images,omitempty"`
	// HostPorts are the ports bound on the node by anything (Docker's proxies
	// included), read from the node's kernel.
	HostPorts []HostPort `json:"host_ports,omitempty"`
	// Volumes are the named volumes on the node labelled with this project
	// (its services' volumes, created with the project, service and replica
	// labels of the replica that first mounted them, and berth's own lock,
	// audit and commit volumes) and the named volumes with no berth label
	// (matched to services by name). Other projects' and anonymous volumes
	// are left out.
	Volumes []Volume `json:"volumes,omitempty"`
	// Ingress is what the project's ingress proxy on the node serves; nil
	// when the node runs no proxy of the project (or it was not read).
	Ingress *IngressState `json:"ingress,omitempty"`
	// Networks are the networks labelled with this project and any
	// network named as the project network (NetworkName), with the
	// containers attached to each.
	Networks []Network `json:"networks,omitempty"`
}

// EngineFacts come from the Docker engine's /info and /version.
type EngineFacts struct {
	ID          string `json:"id,omitempty"`
	Hostname    string `json:"hostname,omitempty"`
	Version     string `json:"version,omitempty"`
	APIVersion  string `json:"api_version,omitempty"`
	OS          string `json:"os,omitempty"`
	Arch        string `json:"arch,omitempty"`
	CPUs        int    `json:"cpus,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	// Containers is how many containers the engine has, of every project
	// and none.
	Containers int `json:"containers,omitempty"`
}

// Container is one container as the engine reports it.
type Container struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"` // without the leading "/"
	Labels  map[string]string `json:"labels,omitempty"`
	Image   string            `json:"image,omitempty"`    // the reference it was created from
	ImageID string            `json:"image_id,omitempty"` // sha256:...
	// State is Docker's: created, running, paused, restarting, removing, exited, dead.
	State string `json:"state"`
	// Health is Docker's health status: "", starting, healthy, unhealthy.
	Health       string        `json:"health,omitempty"`
	ExitCode     int           `json:"exit_code,omitempty"`
	RestartCount int           `json:"restart_count,omitempty"`
	Ports        []PortBinding `json:"ports,omitempty"`
	// IP is the container's address on its first network, for health probes.
	IP string `json:"ip,omitempty"`
	// Mounts are the container's volumes and binds.
	Mounts []Mount `json:"mounts,omitempty"`
	// Networks are the networks the container is on, sorted by name. nil
	// means not known (a live state from before berth read them): the
	// engine always reports at least one.
	Networks []NetworkAttachment `json:"networks,omitempty"`

	// The fields Docker can change on a running container, read from the
	// engine (not from labels, which cannot change after create).
	NanoCPUs    int64  `json:"nano_cpus,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	Restart     string `json:"restart,omitempty"` // restart policy name
}

// PortBinding is a published port of a container as the engine reports it
// (the live state's JSON shape, which must not change). Host and Port give
// it as berth's port values, whose methods key, compare and render it.
type PortBinding struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol"`
}

// Host is the port the binding holds on the node.
func (b PortBinding) Host() HostPort {
	return HostPort{Protocol: b.Protocol, IP: b.HostIP, Port: b.HostPort}
}

// Port is the binding as a port mapping.
func (b PortBinding) Port() PortSpec {
	return PortSpec{Target: b.ContainerPort, Published: b.HostPort, Protocol: b.Protocol, HostIP: b.HostIP}
}

// Binding is the port mapping as the engine reports it once published.
func Binding(p PortSpec) PortBinding {
	h := p.Host()
	return PortBinding{HostIP: h.IP, HostPort: h.Port, ContainerPort: p.Target, Protocol: p.Protocol}
}

// Mount is a container mount.
type Mount struct {
	Type        string `json:"type"` // volume | bind
	Name        string `json:"name,omitempty"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
}

// Image is an image present on a node.
type Image struct {
	ID      string   `json:"id"`
	Tags    []string `json:"tags,omitempty"`
	Digests []string `json:"digests,omitempty"`
	Size    int64    `json:"size,omitempty"`
	// Layers are the image's layers, base first: the diff IDs of its
	// RootFS. Gathered only where they matter (see executor/images): for
	// the local engine's images a service uses, and for the images of a
	// node that lacks one of those.
	Layers []string `json:"layers,omitempty"`
	// LayerSizes are the sizes of Layers (content bytes, from the image's
	// history); local images only, nil when not known.
	LayerSizes []int64 `json:"layer_sizes,omitempty"`
}

// HostPort is a listening socket on the node: config.HostPort, the one
// host port value.
type HostPort = config.HostPort

// Volume is a named volume.
type Volume struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Node returns the state of the named node, or nil.
func (l *Live) Node(name string) *NodeState {
	if l == nil || l.Nodes == nil {
		return nil
	}
	return l.Nodes[name]
}
