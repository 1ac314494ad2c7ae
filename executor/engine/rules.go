package engine

import "github.com/berth-dev/berth/planner"

// The engine's rules that the in-memory fake (executor/fake) follows too, so
// that a fake node answers in the same order and refuses the same specs as a
// real one. Nothing else should need them.

// ForeignOfInterest reports whether another project's container (or one of
// no project) is listed by Containers: it publishes ports, or its name or
// labels say it may be berth's.
func ForeignOfInterest(c planner.Container, project string) bool {
	return isForeignOfInterest(c, project)
}

// SortContainers sorts by name, then ID, as Containers returns them.
func SortContainers(cs []planner.Container) { sortContainers(cs) }

// SortHostPorts sorts as HostPorts returns them.
func SortHostPorts(ps []planner.HostPort) { sortHostPorts(ps) }

// SortPorts sorts a container's port bindings as Inspect returns them.
func SortPorts(ps []planner.PortBinding) { sortPorts(ps) }

// LabelsMatch is Volumes' filter: every wanted label is present, with the
// wanted value unless that is empty.
func LabelsMatch(have, want map[string]string) bool { return labelsMatch(have, want) }

// VolumeLabels are the labels a named volume created for a container gets.
func VolumeLabels(containerLabels map[string]string) map[string]string {
	return volumeLabels(containerLabels)
}

// CheckSpec returns the error CreateContainer gives for a spec the engine
// cannot be asked for (a bad restart policy, mount or port).
func CheckSpec(spec *planner.ContainerSpec) error {
	_, _, err := dockerConfig(spec)
	return err
}

// CheckRestart returns the error UpdateContainer gives for an unknown
// restart policy.
func CheckRestart(policy string) error {
	_, err := restartPolicy(policy)
	return err
}
