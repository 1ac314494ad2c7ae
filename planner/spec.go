package planner

import "github.com/berth-dev/berth/config"

// Labels berth puts on every container it creates. They are berth's only
// state: no state file, no agent. The spec label holds the compared fields so
// that a plan can show which field changed, not only that a hash differs.
const (
	LabelProject = "berth.project"
	LabelService = "berth.service"
	LabelReplica = "berth.replica"
	LabelNode    = "berth.node"
	// LabelHash is the hash of the fields whose change forces a replace.
	LabelHash = "berth.hash"
	// LabelSpec is the JSON of SpecFields (sensitive values hashed).
	LabelSpec = "berth.spec"
	// LabelApply is the ID of the apply that created the container.
	LabelApply = "berth.apply"
	// LabelPlan is the ID of the plan that apply carried out.
	LabelPlan = "berth.plan"
	// LabelReplicas records the service's replica count when the container
	// was created, so a replica removed by hand shows as drift rather than
	// as new.
	LabelReplicas = "berth.replicas"
	// LabelRescheduled names the unreachable nodes a replica was
	// rescheduled off (-reschedule-unreachable): once they are back, this
	// container is the replica and the one there is the duplicate. It is
	// not part of the hash.
	LabelRescheduled = "berth.rescheduled"

	// LabelKind marks berth's own volumes: "lock" or "audit".
	LabelKind = "berth.kind"
)

// ContainerSpec is a fully resolved replica: everything the executor needs to
// create the container, with no decision left to make. Sensitive env values
// live only in EnvVar.Secret, which is never serialised.
type ContainerSpec struct {
	Name       string            `json:"name"`
	Image      string            `json:"image"`
	Command    []string          `json:"command,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Env        []EnvVar          `json:"env,omitempty"` // sorted by name
	Labels     map[string]string `json:"labels"`
	Ports      []PortSpec        `json:"ports,omitempty"`
	Volumes    []VolumeSpec      `json:"volumes,omitempty"`
	Restart    string            `json:"restart"`
	// StopGraceSeconds is the stop timeout.
	StopGraceSeconds int          `json:"stop_grace_seconds"`
	NanoCPUs         int64        `json:"nano_cpus,omitempty"`
	MemoryBytes      int64        `json:"memory_bytes,omitempty"`
	Health           *HealthSpec  `json:"health,omitempty"`
	User             string       `json:"user,omitempty"`
	WorkingDir       string       `json:"working_dir,omitempty"`
	Hostname         string       `json:"hostname,omitempty"`
	ExtraHosts       []string     `json:"extra_hosts,omitempty"`
	Update           UpdatePolicy `json:"update"`
	// NetworkMode is Docker's network mode: "" (the default) or "host"
	// (the ingress proxy, which serves the ingress ports on the node).
	NetworkMode string `json:"network_mode,omitempty"`
	// Network is the only network the container is created on (the project
	// network), with Aliases as its DNS names there. Not compared through
	// the spec label: the live networks are (see networkDrift).
	Network string   `json:"network,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
}

// EnvVar is one environment variable of a container. For a sensitive one,
// Value is empty, Secret holds the value in memory only, and Hash identifies
// it (sha256 over project, service, name and value).
type EnvVar struct {
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
	Hash      string `json:"hash,omitempty"`
	Secret    string `json:"-"`
}

// PortSpec is a port published on the node: config.Port, the one port
// mapping type, under the name plans have always used.
type PortSpec = config.Port

// VolumeSpec mounts a named volume or a host path.
type VolumeSpec struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Bind     bool   `json:"bind,omitempty"`
}

// HealthSpec is how apply decides a replica started well.
type HealthSpec struct {
	HTTP              string   `json:"http,omitempty"`
	TCP               bool     `json:"tcp,omitempty"`
	Cmd               []string `json:"cmd,omitempty"`
	Port              int      `json:"port,omitempty"` // container port for http/tcp probes
	IntervalMillis    int64    `json:"interval_ms"`
	TimeoutMillis     int64    `json:"timeout_ms"`
	Retries           int      `json:"retries"`
	StartPeriodMillis int64    `json:"start_period_ms,omitempty"`
}

// UpdatePolicy is the part of the service's update block apply needs per
// replica: how long to watch it and what to do when it fails.
type UpdatePolicy struct {
	MonitorMillis  int64  `json:"monitor_ms"`
	DelayMillis    int64  `json:"delay_ms,omitempty"`
	FailureAction  string `json:"failure_action"`
	DeadlineMillis int64  `json:"deadline_ms"`
}
