package fake

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/build"

	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/planner"
)

// Node is an in-memory executor.Node for unit tests. It behaves like an engine
// where it matters to berth (names are unique, a missing image fails create,
// a taken host port fails start, a volume create returns the existing
// volume, missing objects give engine.ErrNotFound) and has knobs to inject
// failures. It passes the shared suite in executor/nodetest.
//
// Networks: a "bridge" network exists from the start (containers whose
// spec names no network are on it); a spec's network must exist for create
// and start; a network with a running container attached cannot be
// removed (AddNetwork adds one made outside berth).
//
// Containers get addresses 172.30.0.N; DialContainer to a running
// container's address answers HTTP (GET /healthz: 200 "ok", or 500 when the
// container is unhealthy; GET /: "echo IMAGE on NODE") on any port.
type Node struct {
	name string

	mu         sync.Mutex
	facts      planner.EngineFacts
	containers map[string]*fakeContainer // by ID
	images     map[string]*planner.Image // by ID
	registry   map[string]bool
	volumes    map[string]planner.Volume
	networks   map[string]*fakeNetwork // by name
	hostPorts  []planner.HostPort
	errs       map[string]error
	nextErrs   map[string][]error
	behaviours map[string]Behaviour
	calls      []string
	seq        int
	closed     bool
	unixDial   func(ctx context.Context, path string) (net.Conn, error)
	// logWake is closed (and replaced) when a log line is written or a
	// container's state changes, for the followers of LogStream.
	logWake chan struct{}
	exec    func(c planner.Container, opts engine.ExecOptions) int
}

type fakeContainer struct {
	c       planner.Container
	spec    planner.ContainerSpec
	behave  Behaviour
	started bool
	// startedAt is when it last started; changed counts the timed
	// changes of behave.Changes that have happened since.
	startedAt time.Time
	changed   int
	logs      []engine.LogLine
}

// Behaviour says how containers created from an image behave once
// started (set with SetBehaviour).
type Behaviour struct {
	// Health is the Docker health status a container with an engine health
	// check (Health.Cmd) reports after start: "" means "healthy".
	Health string
	// Unhealthy makes HTTP probes through DialContainer get 500 and the
	// engine health status "unhealthy".
	Unhealthy bool
	// Exit makes the container exit with ExitCode right after start.
	Exit     bool
	ExitCode int
	// Logs is what Logs returns.
	Logs string
	// StartError makes StartContainer fail with this message.
	StartError string
	// Changes happen to a running container at set times after its start,
	// in order (see Change).
	Changes []Change
}

// Change is a change of a running container's state After its start.
// The fake applies it when the container is next read (any call on the
// node), against time.Now: run the test in a testing/synctest bubble and
// the fake clock drives it deterministically.
type Change struct {
	After time.Duration
	// Health, if set, becomes the container's health: its engine health
	// status (with a Health.Cmd check), and HTTP probes through
	// DialContainer get 500 when it is "unhealthy" (200 otherwise).
	Health string
	// Exit makes it exit with ExitCode (restarting, with a restart count
	// one higher, when its restart policy restarts it).
	Exit     bool
	ExitCode int
	// Restart makes it crash and be restarted by the engine at once: it
	// runs on, with a restart count one higher.
	Restart bool
}

// NewNode returns an empty fake engine named name.
func NewNode(name string) *Node {
	return &Node{
		name: name,
		facts: planner.EngineFacts{
			ID: "fake-" + name, Hostname: name, Version: "20.10.24-fake", APIVersion: "1.41",
			OS: "linux", Arch: "amd64", CPUs: 2, MemoryBytes: 4 << 30,
		},
		containers: map[string]*fakeContainer{},
		images:     map[string]*planner.Image{},
		registry:   map[string]bool{},
		volumes:    map[string]planner.Volume{},
		networks:   map[string]*fakeNetwork{"bridge": {id: fakeID(name+" network", 0), name: "bridge"}},
		errs:       map[string]error{},
		nextErrs:   map[string][]error{},
		behaviours: map[string]Behaviour{},
	}
}

// --- knobs ---

// SetUnixDialer makes DialUnix call dial (for example to reach an
// in-process admin API); nil, the default, makes DialUnix fail as a dial to
// a socket nothing listens on does.
func (f *Node) SetUnixDialer(dial func(ctx context.Context, path string) (net.Conn, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unixDial = dial
}

// SetError makes every call of method (a Node method name, e.g.
// "StartContainer") fail with err; nil clears it.
func (f *Node) SetError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
	} else {
		f.errs[method] = err
	}
}

// FailNext makes the next call of method fail with err (queued: call it
// twice to fail the next two calls).
func (f *Node) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextErrs[method] = append(f.nextErrs[method], err)
}

// SetFacts replaces the engine facts.
func (f *Node) SetFacts(facts planner.EngineFacts) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.facts = facts
}

// AddImage puts an image tagged ref on the node and returns it.
func (f *Node) AddImage(ref string) planner.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addImage(imageID(ref), ref)
}

func (f *Node) addImage(id, ref string) planner.Image {
	ref = planner.NormalizeRef(ref)
	// A tag moves to the new image.
	for _, img := range f.images {
		for i, t := range img.Tags {
			if t == ref && img.ID != id {
				img.Tags = append(img.Tags[:i], img.Tags[i+1:]...)
				break
			}
		}
	}
	img, ok := f.images[id]
	if !ok {
		img = &planner.Image{ID: id, Size: 1 << 20}
		f.images[id] = img
	}
	if ref != "" && !slices.Contains(img.Tags, ref) {
		img.Tags = append(img.Tags, ref)
		sort.Strings(img.Tags)
	}
	return *img
}

// AddRegistryImage lets PullImage fetch ref.
func (f *Node) AddRegistryImage(ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registry[planner.NormalizeRef(ref)] = true
}

// AddHostPort marks a port as bound on the node by something else.
func (f *Node) AddHostPort(p planner.HostPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hostPorts = append(f.hostPorts, p)
}

// AddContainer puts an existing container on the node as is (own or
// foreign, by its labels). An empty ID or Name is filled in. Its ports hold
// host ports while it is running.
func (f *Node) AddContainer(c planner.Container) planner.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	if c.ID == "" {
		c.ID = fakeID(f.name, f.seq)
	}
	if c.Name == "" {
		c.Name = "container-" + strconv.Itoa(f.seq)
	}
	if c.State == "" {
		c.State = "running"
	}
	if c.State == "running" && c.IP == "" {
		c.IP = fmt.Sprintf("172.30.%d.%d", f.seq/250, f.seq%250+2)
	}
	fc := &fakeContainer{c: c, started: c.State == "running"}
	fc.spec.Image = c.Image
	fc.spec.Labels = c.Labels
	f.containers[c.ID] = fc
	return cloneContainer(c)
}

// AddForeign adds a container of another project (or none) that publishes
// ports; berth must report it and never touch it.
func (f *Node) AddForeign(c planner.Container) planner.Container { return f.AddContainer(c) }

// SetBehaviour sets how containers created from image ref behave.
func (f *Node) SetBehaviour(ref string, b Behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behaviours[planner.NormalizeRef(ref)] = b
}

// SetHealth sets a container's health status ("healthy", "unhealthy", ...).
// An unhealthy container also fails HTTP probes.
func (f *Node) SetHealth(idOrName, health string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(idOrName)
	if c == nil {
		return fmt.Errorf("fake %s: no container %s: %w", f.name, idOrName, engine.ErrNotFound)
	}
	c.c.Health = health
	c.behave.Unhealthy = health == "unhealthy"
	return nil
}

// Exit makes a container exit with code now.
func (f *Node) Exit(idOrName string, code int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(idOrName)
	if c == nil {
		return fmt.Errorf("fake %s: no container %s: %w", f.name, idOrName, engine.ErrNotFound)
	}
	c.c.State, c.c.ExitCode, c.c.Health, c.c.IP = "exited", code, "", ""
	return nil
}

// Calls returns the calls made so far, as "Method arg..." strings.
func (f *Node) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// ResetCalls forgets the recorded calls.
func (f *Node) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Image returns the image with ID or name ref, and whether the node holds
// it.
func (f *Node) Image(ref string) (planner.Image, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img := f.image(ref)
	if img == nil {
		return planner.Image{}, false
	}
	c := *img
	c.Tags = append([]string(nil), img.Tags...)
	return c, true
}

// Tag gives the image id the name ref, as a Docker node's TagImage does. It
// is not a method of Node (a plain fake node cannot tag: the image step
// sends to it), for tests that make a node that can.
func (f *Node) Tag(id, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tag(id, ref)
}

func (f *Node) tag(id, ref string) error {
	if _, ok := f.images[id]; !ok {
		return f.notFound("image", id)
	}
	f.addImage(id, ref)
	return nil
}

// SetImageTags replaces the names image id is held under.
func (f *Node) SetImageTags(id string, tags ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.images[id]; ok {
		img.Tags = append([]string(nil), tags...)
	}
}

// RemoveImage removes the image named ref (docker image rm -f).
func (f *Node) RemoveImage(ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img := f.image(ref); img != nil {
		delete(f.images, img.ID)
	}
}

// Container returns a container by ID or name.
func (f *Node) Container(idOrName string) (planner.Container, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	c := f.find(idOrName)
	if c == nil {
		return planner.Container{}, false
	}
	return cloneContainer(c.c), true
}

// Spec returns the spec a container was created with.
func (f *Node) Spec(idOrName string) (planner.ContainerSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(idOrName)
	if c == nil {
		return planner.ContainerSpec{}, false
	}
	return c.spec, true
}

// advance applies the timed changes that are due. f.mu must be held.
func (f *Node) advance() {
	now := time.Now()
	for _, c := range f.containers {
		for c.started && c.c.State == "running" && c.changed < len(c.behave.Changes) {
			ch := c.behave.Changes[c.changed]
			if now.Sub(c.startedAt) < ch.After {
				break
			}
			c.changed++
			if ch.Health != "" {
				c.behave.Unhealthy = ch.Health == "unhealthy"
				if c.spec.Health != nil && len(c.spec.Health.Cmd) > 0 {
					c.c.Health = ch.Health
				}
			}
			if ch.Restart {
				c.c.RestartCount++
			}
			if ch.Exit {
				f.exit(c, ch.ExitCode)
			}
		}
	}
}

// exit makes c exit with code, or restart under its restart policy. f.mu
// must be held.
func (f *Node) exit(c *fakeContainer, code int) {
	defer f.wake()
	c.c.State, c.c.ExitCode, c.c.Health, c.c.IP = "exited", code, "", ""
	if c.spec.Restart == "always" || c.spec.Restart == "unless-stopped" || (c.spec.Restart == "on-failure" && code != 0) {
		c.c.State = "restarting"
		c.c.RestartCount++
	}
}

// --- Node ---

func (f *Node) Name() string { return f.name }

// begin records a call and returns an injected error, if any. f.mu must be
// held.
func (f *Node) begin(ctx context.Context, method string, args ...string) error {
	f.calls = append(f.calls, strings.TrimSpace(method+" "+strings.Join(args, " ")))
	f.advance()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.closed {
		// As the engine node says it: the operation and its object, then
		// why (here: the node was closed, as when its connection is lost).
		op := strings.TrimSpace(strings.ToLower(camelWords.ReplaceAllString(method, "$1 $2")) + " " + strings.Join(args, " "))
		return fmt.Errorf("%s: connection to node %s lost: closed", op, f.name)
	}
	if q := f.nextErrs[method]; len(q) > 0 {
		f.nextErrs[method] = q[1:]
		return q[0]
	}
	return f.errs[method]
}

func (f *Node) Info(ctx context.Context) (planner.EngineFacts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Info"); err != nil {
		return planner.EngineFacts{}, err
	}
	facts := f.facts
	facts.Containers = len(f.containers)
	return facts, nil
}

func (f *Node) Containers(ctx context.Context, project string) (own, foreign []planner.Container, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Containers", project); err != nil {
		return nil, nil, err
	}
	for _, c := range f.containers {
		if project != "" && c.c.Labels[planner.LabelProject] == project {
			own = append(own, cloneContainer(c.c))
		} else if engine.ForeignOfInterest(c.c, project) {
			// Like the engine's list, which has no reservations: the gather
			// inspects other projects' containers for them.
			fc := cloneContainer(c.c)
			fc.NanoCPUs, fc.MemoryBytes = 0, 0
			foreign = append(foreign, fc)
		}
	}
	engine.SortContainers(own)
	engine.SortContainers(foreign)
	return own, foreign, nil
}

func (f *Node) Inspect(ctx context.Context, id string) (planner.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Inspect", id); err != nil {
		return planner.Container{}, err
	}
	c := f.find(id)
	if c == nil {
		return planner.Container{}, f.notFound("container", id)
	}
	return cloneContainer(c.c), nil
}

func (f *Node) Images(ctx context.Context) ([]planner.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Images"); err != nil {
		return nil, err
	}
	out := make([]planner.Image, 0, len(f.images))
	for _, img := range f.images {
		i := *img
		i.Tags = append([]string(nil), img.Tags...)
		i.Digests = append([]string(nil), img.Digests...)
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// HostPorts returns the ports added with AddHostPort plus those published
// by running containers (as docker-proxy holds them on a real node).
func (f *Node) HostPorts(ctx context.Context) ([]planner.HostPort, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "HostPorts"); err != nil {
		return nil, err
	}
	seen := map[planner.HostPort]bool{}
	var out []planner.HostPort
	add := func(p planner.HostPort) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range f.hostPorts {
		add(p)
	}
	for _, c := range f.containers {
		if c.c.State != "running" {
			continue
		}
		for _, p := range c.c.Ports {
			h := p.Host()
			h.IP = orAny(h.IP)
			add(h)
		}
	}
	engine.SortHostPorts(out)
	return out, nil
}

func (f *Node) Volumes(ctx context.Context, labels map[string]string) ([]planner.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Volumes"); err != nil {
		return nil, err
	}
	var out []planner.Volume
	for _, v := range f.volumes {
		if engine.LabelsMatch(v.Labels, labels) {
			out = append(out, planner.Volume{Name: v.Name, Labels: maps.Clone(v.Labels)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *Node) CreateContainer(ctx context.Context, name string, spec *planner.ContainerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "CreateContainer", name); err != nil {
		return "", err
	}
	if err := engine.CheckSpec(spec); err != nil {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	if f.find(name) != nil {
		return "", fmt.Errorf("create container %s: Conflict. The container name \"/%s\" is already in use", name, name)
	}
	img := f.image(spec.Image)
	if img == nil {
		return "", fmt.Errorf("create container %s: %w: No such image: %s", name, engine.ErrNotFound, spec.Image)
	}
	f.seq++
	id := fakeID(f.name, f.seq)
	c := &fakeContainer{spec: cloneSpec(spec), behave: f.behaviours[planner.NormalizeRef(spec.Image)]}
	c.c = planner.Container{
		ID: id, Name: name, Labels: maps.Clone(spec.Labels), Image: spec.Image, ImageID: img.ID, State: "created",
		NanoCPUs: spec.NanoCPUs, MemoryBytes: spec.MemoryBytes, Restart: spec.Restart,
		Networks: []planner.NetworkAttachment{{Name: "bridge"}},
	}
	if spec.Network != "" {
		if f.network(spec.Network) == nil {
			return "", fmt.Errorf("create container %s: %w: network %s not found", name, engine.ErrNotFound, spec.Network)
		}
		c.c.Networks = []planner.NetworkAttachment{{Name: spec.Network, Aliases: sortedAliases(spec.Aliases)}}
	}
	for _, p := range spec.Ports {
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		c.c.Ports = append(c.c.Ports, planner.Binding(p))
	}
	engine.SortPorts(c.c.Ports)
	for _, v := range spec.Volumes {
		m := planner.Mount{Type: "volume", Name: v.Source, Destination: v.Target}
		if v.Bind {
			m = planner.Mount{Type: "bind", Source: v.Source, Destination: v.Target}
		} else if _, ok := f.volumes[v.Source]; !ok {
			// Like the engine given dockerConfig's mount: created with the
			// replica's labels.
			f.volumes[v.Source] = planner.Volume{Name: v.Source, Labels: engine.VolumeLabels(spec.Labels)}
		}
		c.c.Mounts = append(c.c.Mounts, m)
	}
	f.containers[id] = c
	return id, nil
}

func (f *Node) StartContainer(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "StartContainer", id); err != nil {
		return err
	}
	c := f.find(id)
	if c == nil {
		return f.notFound("container", id)
	}
	if c.c.State == "running" {
		return nil
	}
	if c.behave.StartError != "" {
		return fmt.Errorf("start container %s: %s", id, c.behave.StartError)
	}
	if err := f.portsFree(c); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if n := f.missingNetwork(c); n != "" {
		return fmt.Errorf("start container %s: %w: network %s not found", id, engine.ErrNotFound, n)
	}
	f.seq++
	c.c.State, c.c.ExitCode = "running", 0
	c.c.IP = fmt.Sprintf("172.30.%d.%d", f.seq/250, f.seq%250+2)
	c.started, c.startedAt, c.changed = true, time.Now(), 0
	if c.spec.Health != nil && len(c.spec.Health.Cmd) > 0 {
		c.c.Health = c.behave.Health
		if c.c.Health == "" {
			c.c.Health = "healthy"
		}
		if c.behave.Unhealthy {
			c.c.Health = "unhealthy"
		}
	}
	f.startLogs(c)
	if c.behave.Exit {
		f.exit(c, c.behave.ExitCode)
	}
	return nil
}

// portsFree checks c's published ports against running containers and the
// node's other listeners. f.mu must be held.
func (f *Node) portsFree(c *fakeContainer) error {
	for _, p := range c.c.Ports {
		if p.HostPort == 0 {
			continue
		}
		for _, o := range f.containers {
			if o == c || o.c.State != "running" {
				continue
			}
			for _, op := range o.c.Ports {
				if op.Host().Overlaps(p.Host()) {
					return fmt.Errorf("Bind for %s:%d failed: port is already allocated", orAny(p.HostIP), p.HostPort)
				}
			}
		}
		for _, hp := range f.hostPorts {
			if hp.Overlaps(p.Host()) {
				return fmt.Errorf("listen %s %s:%d: bind: address already in use", p.Protocol, orAny(p.HostIP), p.HostPort)
			}
		}
	}
	return nil
}

func orAny(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

func (f *Node) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "StopContainer", id, grace.String()); err != nil {
		return err
	}
	c := f.find(id)
	if c == nil {
		return f.notFound("container", id)
	}
	if c.c.Running() {
		c.c.State, c.c.ExitCode, c.c.Health, c.c.IP = "exited", 0, "", ""
		f.writeLog(c, time.Time{}, false, "echo: signal received, exiting")
	}
	return nil
}

func (f *Node) RenameContainer(ctx context.Context, id, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "RenameContainer", id, name); err != nil {
		return err
	}
	c := f.find(id)
	if c == nil {
		return f.notFound("container", id)
	}
	if o := f.find(name); o != nil && o != c {
		return fmt.Errorf("rename container %s to %s: Conflict. The container name \"/%s\" is already in use", id, name, name)
	}
	c.c.Name = name
	return nil
}

func (f *Node) RemoveContainer(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "RemoveContainer", id); err != nil {
		return err
	}
	c := f.find(id)
	if c == nil {
		return f.notFound("container", id)
	}
	delete(f.containers, c.c.ID)
	f.wake()
	return nil
}

func (f *Node) UpdateContainer(ctx context.Context, id string, spec *planner.ContainerSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "UpdateContainer", id); err != nil {
		return err
	}
	c := f.find(id)
	if c == nil {
		return f.notFound("container", id)
	}
	if err := engine.CheckRestart(spec.Restart); err != nil {
		return fmt.Errorf("update container %s: %w", id, err)
	}
	c.spec.NanoCPUs, c.spec.MemoryBytes, c.spec.Restart = spec.NanoCPUs, spec.MemoryBytes, spec.Restart
	c.c.NanoCPUs, c.c.MemoryBytes, c.c.Restart = spec.NanoCPUs, spec.MemoryBytes, spec.Restart
	return nil
}

func (f *Node) Logs(ctx context.Context, id string, tail int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Logs", id); err != nil {
		return "", err
	}
	c := f.find(id)
	if c == nil {
		return "", f.notFound("container", id)
	}
	logs := c.behave.Logs
	if tail > 0 {
		lines := strings.SplitAfter(logs, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(lines) > tail {
			lines = lines[len(lines)-tail:]
		}
		logs = strings.Join(lines, "")
	}
	return logs, nil
}

// CreateVolume is atomic like the engine's: the first creator's labels win.
func (f *Node) CreateVolume(ctx context.Context, name string, labels map[string]string) (planner.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "CreateVolume", name); err != nil {
		return planner.Volume{}, err
	}
	if v, ok := f.volumes[name]; ok {
		return planner.Volume{Name: v.Name, Labels: maps.Clone(v.Labels)}, nil
	}
	v := planner.Volume{Name: name, Labels: maps.Clone(labels)}
	f.volumes[name] = v
	return planner.Volume{Name: name, Labels: maps.Clone(labels)}, nil
}

func (f *Node) RemoveVolume(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "RemoveVolume", name); err != nil {
		return err
	}
	if _, ok := f.volumes[name]; !ok {
		return f.notFound("volume", name)
	}
	for _, c := range f.containers {
		for _, m := range c.c.Mounts {
			if m.Type == "volume" && m.Name == name {
				return fmt.Errorf("remove volume %s: volume is in use - [%s]", name, c.c.ID)
			}
		}
	}
	delete(f.volumes, name)
	return nil
}

func (f *Node) DialContainer(ctx context.Context, addr string) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "DialContainer", addr); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var target *fakeContainer
	for _, c := range f.containers {
		if c.c.State == "running" && c.c.IP == host {
			target = c
		}
	}
	if target == nil {
		return nil, fmt.Errorf("dial %s: %w", addr, syscall.ECONNREFUSED)
	}
	client, server := net.Pipe()
	unhealthy := target.behave.Unhealthy || target.c.Health == "unhealthy"
	body := fmt.Sprintf("echo %s on %s\n", target.spec.Image, f.name)
	go serveFakeHTTP(server, unhealthy, body)
	return client, nil
}

func (f *Node) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	f.mu.Lock()
	err := f.begin(ctx, "DialUnix", path)
	dial := f.unixDial
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if dial == nil {
		return nil, fmt.Errorf("dial unix %s: %w", path, syscall.ENOENT)
	}
	// Called without the lock: the dialer may block or call back into
	// the node.
	return dial(ctx, path)
}

// serveFakeHTTP answers HTTP/1.1 requests on c until it closes.
func serveFakeHTTP(c net.Conn, unhealthy bool, body string) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		code, text := http.StatusOK, body
		if req.URL.Path == "/healthz" {
			text = "ok\n"
			if unhealthy {
				code, text = http.StatusInternalServerError, "unhealthy\n"
			}
		}
		resp := &http.Response{
			StatusCode: code, ProtoMajor: 1, ProtoMinor: 1, Request: req,
			Header:        http.Header{"Content-Type": {"text/plain"}},
			ContentLength: int64(len(text)), Body: io.NopCloser(strings.NewReader(text)),
		}
		if err := resp.Write(c); err != nil {
			return
		}
		if req.Close {
			return
		}
	}
}

// LoadImage reads a `docker save` tarball's manifest.json and adds its
// images with their tags.
func (f *Node) LoadImage(ctx context.Context, r io.Reader) error {
	f.mu.Lock()
	err := f.begin(ctx, "LoadImage")
	f.mu.Unlock()
	if err != nil {
		return err
	}
	var manifest []struct {
		Config   string
		RepoTags []string
	}
	tr := tar.NewReader(r)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("load image: %w", err)
		}
		if h.Name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				return fmt.Errorf("load image: manifest.json: %w", err)
			}
			found = true
		}
	}
	if !found {
		return errors.New("load image: no manifest.json in the tarball")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range manifest {
		id := "sha256:" + strings.TrimSuffix(strings.TrimPrefix(m.Config, "blobs/sha256/"), ".json")
		if len(m.RepoTags) == 0 {
			f.addImage(id, "")
		}
		for _, t := range m.RepoTags {
			f.addImage(id, t)
		}
	}
	return nil
}

func (f *Node) PullImage(ctx context.Context, ref, registryAuth string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "PullImage", ref); err != nil {
		return err
	}
	if !f.registry[planner.NormalizeRef(ref)] {
		return fmt.Errorf("pull image %s: pull access denied for %s, repository does not exist or may require 'docker login'", ref, ref)
	}
	f.addImage(imageID(planner.NormalizeRef(ref)), ref)
	return nil
}

func (f *Node) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Close")
	f.closed = true
	return nil
}

// --- helpers ---

// camelWords finds the word breaks of a method name ("StartContainer").
var camelWords = regexp.MustCompile(`([a-z])([A-Z])`)

// find returns a container by ID, ID prefix (12+ characters) or name.
func (f *Node) find(idOrName string) *fakeContainer {
	if c, ok := f.containers[idOrName]; ok {
		return c
	}
	for _, c := range f.containers {
		if c.c.Name == strings.TrimPrefix(idOrName, "/") {
			return c
		}
	}
	if len(idOrName) >= 12 {
		for id, c := range f.containers {
			if strings.HasPrefix(id, idOrName) {
				return c
			}
		}
	}
	return nil
}

// image finds an image by reference or ID.
func (f *Node) image(ref string) *planner.Image {
	if img, ok := f.images[ref]; ok {
		return img
	}
	n := planner.NormalizeRef(ref)
	for _, img := range f.images {
		if slices.Contains(img.Tags, n) {
			return img
		}
	}
	return nil
}

func (f *Node) notFound(kind, id string) error {
	return fmt.Errorf("%s %s on fake node %s: %w", kind, id, f.name, engine.ErrNotFound)
}

func imageID(ref string) string {
	sum := sha256.Sum256([]byte("fake image " + planner.NormalizeRef(ref)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func fakeID(node string, seq int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("fake container %s %d", node, seq)))
	return hex.EncodeToString(sum[:])
}

func cloneContainer(c planner.Container) planner.Container {
	c.Labels = maps.Clone(c.Labels)
	c.Ports = append([]planner.PortBinding(nil), c.Ports...)
	c.Mounts = append([]planner.Mount(nil), c.Mounts...)
	if c.Networks != nil {
		nets := make([]planner.NetworkAttachment, len(c.Networks))
		for i, a := range c.Networks {
			nets[i] = planner.NetworkAttachment{Name: a.Name, Aliases: slices.Clone(a.Aliases)}
		}
		c.Networks = nets
	}
	return c
}

func cloneSpec(s *planner.ContainerSpec) planner.ContainerSpec {
	c := *s
	c.Labels = maps.Clone(s.Labels)
	c.Command = append([]string(nil), s.Command...)
	c.Entrypoint = append([]string(nil), s.Entrypoint...)
	c.Env = append([]planner.EnvVar(nil), s.Env...)
	c.Ports = append([]planner.PortSpec(nil), s.Ports...)
	c.Volumes = append([]planner.VolumeSpec(nil), s.Volumes...)
	c.Aliases = slices.Clone(s.Aliases)
	if s.Health != nil {
		h := *s.Health
		c.Health = &h
	}
	return c
}

// LocalEngine is a fake of the local Docker engine (the machine running
// berth, which images are sent from), for tests of other packages: put
// images on it with AddImage, plan with its ImageFacts, and make an apply's
// image step send from it with Use. It builds nothing.
type LocalEngine struct{ *Node }

// NewLocalEngine returns an empty fake local engine.
func NewLocalEngine() *LocalEngine { return &LocalEngine{NewNode("local")} }

func (e *LocalEngine) InspectImage(ctx context.Context, ref string) (planner.Image, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.begin(ctx, "inspectImage", ref); err != nil {
		return planner.Image{}, err
	}
	img := e.image(ref)
	if img == nil {
		return planner.Image{}, e.notFound("image", ref)
	}
	c := *img
	c.Tags = append([]string(nil), img.Tags...)
	return c, nil
}

func (e *LocalEngine) BuildImage(ctx context.Context, _ io.Reader, _ build.ImageBuildOptions, _ func(string)) (string, error) {
	return "", errors.New("the fake local engine builds nothing")
}

// saveImage streams a `docker save` tarball of the image (one layer of its
// size) that Node.LoadImage loads.
func (e *LocalEngine) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	img, err := e.InspectImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hexID := strings.TrimPrefix(img.ID, "sha256:")
	file := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)})
		tw.Write(b)
	}
	file("layer/layer.tar", make([]byte, img.Size))
	file(hexID+".json", []byte(`{"architecture":"amd64","os":"linux"}`))
	m, _ := json.Marshal([]map[string]any{{"Config": hexID + ".json", "RepoTags": []string{planner.NormalizeRef(ref)}, "Layers": []string{"layer/layer.tar"}}})
	file("manifest.json", m)
	tw.Close()
	return io.NopCloser(&buf), nil
}

func (e *LocalEngine) TagImage(ctx context.Context, id, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.begin(ctx, "tagImage", id, ref); err != nil {
		return err
	}
	return e.tag(id, ref)
}

func (e *LocalEngine) RemoveImage(ctx context.Context, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.begin(ctx, "removeImage", ref); err != nil {
		return err
	}
	img := e.image(ref)
	if img == nil {
		return e.notFound("image", ref)
	}
	delete(e.images, img.ID)
	return nil
}

// Close leaves the fake usable: an apply closes its local engine.
func (e *LocalEngine) Close() error { return nil }
