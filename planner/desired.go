package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"github.com/berth-dev/berth/config"
)

// serviceDesired is a service resolved into what every replica shares.
type serviceDesired struct {
	svc   *config.Service
	image string
	ports []PortSpec // published ports resolved (auto-assigned ones filled in)
	// template has every field but the per-replica name and labels.
	template ContainerSpec
	fields   *SpecFields
	hash     string
	specJSON string
	// causes say which resolved references changed since the live
	// containers were made, and why.
	causes []refCause
}

// hostPorts are the service's host mode ports (each binds the same host
// port on every node it runs on).
func (d *serviceDesired) hostPorts() []PortSpec {
	var out []PortSpec
	for _, p := range d.ports {
		if !p.Ingress() {
			out = append(out, p)
		}
	}
	return out
}

// SecretHash identifies a sensitive env value without revealing it: SHA-256
// over the project, service, variable name and value.
func SecretHash(project, service, name, value string) string {
	h := sha256.New()
	for _, s := range []string{project, service, name, value} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

func resolveService(project string, svc *config.Service, image string, ports []PortSpec) *serviceDesired {
	d := &serviceDesired{svc: svc, image: image, ports: ports}
	t := &d.template
	t.Image = image
	t.Command = svc.Command
	t.Entrypoint = svc.Entrypoint
	for _, k := range slices.Sorted(maps.Keys(svc.Env)) {
		v := svc.Env[k]
		if v.Sensitive {
			t.Env = append(t.Env, EnvVar{Name: k, Sensitive: true, Hash: SecretHash(project, svc.Name, k, v.Value), Secret: v.Value})
		} else {
			t.Env = append(t.Env, EnvVar{Name: k, Value: v.Value})
		}
	}
	t.Ports = ports
	for _, v := range svc.Volumes {
		t.Volumes = append(t.Volumes, VolumeSpec{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly, Bind: v.IsBind()})
	}
	t.Restart = svc.Restart
	t.StopGraceSeconds = int(svc.StopGracePeriod.Seconds())
	t.NanoCPUs = svc.Resources.NanoCPUs
	t.MemoryBytes = svc.Resources.MemoryBytes
	if h := svc.Health; h != nil {
		hs := &HealthSpec{
			HTTP: h.HTTP, TCP: h.TCP, Cmd: h.Cmd, Port: h.Port,
			IntervalMillis:    h.Interval.Milliseconds(),
			TimeoutMillis:     h.Timeout.Milliseconds(),
			Retries:           h.Retries,
			StartPeriodMillis: h.StartPeriod.Milliseconds(),
		}
		if hs.Port == 0 && (hs.HTTP != "" || hs.TCP) && len(svc.Ports) > 0 {
			hs.Port = svc.Ports[0].Target
		}
		t.Health = hs
	}
	t.User = svc.User
	t.WorkingDir = svc.WorkingDir
	t.Hostname = svc.Hostname
	t.ExtraHosts = svc.ExtraHosts
	t.Network = NetworkName(project)
	t.Update = UpdatePolicy{
		MonitorMillis:  svc.Update.Monitor.Milliseconds(),
		DelayMillis:    svc.Update.Delay.Milliseconds(),
		FailureAction:  svc.Update.FailureAction,
		DeadlineMillis: config.DefaultHealthDeadline.Milliseconds(),
	}
	// The label records the start order: depends_on and the references.
	var deps []string
	if d := svc.Dependencies(); len(d) > 0 {
		deps = d
	}
	d.fields = specFields(t, svc.Labels, deps)
	d.hash = d.fields.replaceHash()
	b, _ := json.Marshal(d.fields)
	d.specJSON = string(b)
	return d
}

// replicaSpec builds replica i's spec on node from the template. Slices and
// the env are shared with the template (read-only).
func (d *serviceDesired) replicaSpec(project, node string, replica int) *ContainerSpec {
	s := d.template
	s.Name = ContainerName(project, d.svc.Name, replica)
	s.Labels = make(map[string]string, len(d.svc.Labels)+6)
	maps.Copy(s.Labels, d.svc.Labels)
	s.Labels[LabelProject] = project
	s.Labels[LabelService] = d.svc.Name
	s.Labels[LabelReplica] = strconv.Itoa(replica)
	s.Labels[LabelNode] = node
	s.Labels[LabelHash] = d.hash
	s.Labels[LabelSpec] = d.specJSON
	// Aliases(service, replica), the second one cut from the name
	// (PROJECT-SERVICE-N) instead of built again.
	s.Aliases = []string{d.svc.Name, s.Name[len(project)+1:]}
	return &s
}
