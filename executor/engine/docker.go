package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/executor/internal/msg"
	"github.com/berth-dev/berth/planner"
)

// ErrNotFound is wrapped by a Node's error when the container or volume a
// method names does not exist. It is the only error a caller may read as
// "nothing there"; any other error is a transport or engine failure.
var ErrNotFound = errors.New("not found")

// DefaultRequestTimeout bounds one API request when a constructor is given
// no timeout.
const DefaultRequestTimeout = 20 * time.Second

// Node is an executor.Node backed by a Docker Engine API client. The SSH and
// the local transports differ only in how a connection to the engine's socket is
// opened, how the node's host ports are read and how a container is dialled.
type Node struct {
	name    string
	cli     *client.Client
	tr      *http.Transport
	timeout time.Duration // deadline of one API request

	hostPorts func(ctx context.Context) ([]planner.HostPort, error)
	dial      func(ctx context.Context, addr string) (net.Conn, error)
	unixDial  func(ctx context.Context, path string) (net.Conn, error)
	// broken, if set, explains why the transport failed (keep-alive lost):
	// errors are reported with that reason rather than a bare EOF.
	broken func() error
	close  func() error
	closed atomic.Bool
}

var errNodeClosed = errors.New("connection closed (the node was closed)")

// engineDial wraps dial so that a closed node opens no more connections.
func (d *Node) engineDial(dial func(ctx context.Context) (net.Conn, error)) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		if d.closed.Load() {
			return nil, errNodeClosed
		}
		return dial(ctx)
	}
}

// newDockerClient returns an API client whose every connection comes from
// dial. berth passes its own *http.Transport so that connections (SSH
// channels) are kept alive and reused, and it controls their number.
func newDockerClient(dial func(ctx context.Context) (net.Conn, error), host string) (*client.Client, *http.Transport, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx)
		},
		// Enough idle channels for a gather's and an apply's parallel calls
		// to reuse them; more are opened on demand (forwarding channels do
		// not count against sshd's MaxSessions).
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	cli, err := client.NewClientWithOpts(
		client.WithHost(host),
		client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithAPIVersionNegotiation(),
		client.WithTraceProvider(noop.NewTracerProvider()),
		client.WithUserAgent("berth"),
	)
	if err != nil {
		return nil, nil, err
	}
	return cli, tr, nil
}

// connect pings the engine and settles the API version, so that a node whose
// engine does not answer is unreachable from the start.
func (d *Node) connect(ctx context.Context) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	p, err := d.cli.Ping(ctx)
	if err != nil {
		return d.wrap("ping engine", err)
	}
	d.cli.NegotiateAPIVersionPing(p)
	return nil
}

func (d *Node) Name() string { return d.name }

// Ping asks the engine for its API version: one request, with no deadline
// but ctx's. Tests and benchmarks time it.
func (d *Node) Ping(ctx context.Context) error {
	_, err := d.cli.Ping(ctx)
	return err
}

// HTTPTransport is the API client's transport, whose connections are the
// node's engine channels. Only tests and benchmarks touch it: to hold or
// count channels, or to turn keep-alive off to measure a fresh channel per
// request.
func (d *Node) HTTPTransport() *http.Transport { return d.tr }

func (d *Node) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d.timeout)
}

// wrap turns an engine or transport error into one line: "op: reason". Not
// found errors also wrap ErrNotFound.
func (d *Node) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if d.closed.Load() {
		return fmt.Errorf("%s: %w", op, errNodeClosed)
	}
	if d.broken != nil {
		if b := d.broken(); b != nil {
			return fmt.Errorf("%s: %w", op, b)
		}
	}
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("%s: %w: %s", op, ErrNotFound, msg.OneLine(err.Error()))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within the request timeout (%s): %w", op, d.timeout, err)
	}
	return fmt.Errorf("%s: %s", op, msg.OneLine(err.Error()))
}

func (d *Node) Info(ctx context.Context) (planner.EngineFacts, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	var f planner.EngineFacts
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		info, err := d.cli.Info(gctx)
		if err != nil {
			return d.wrap("engine info", err)
		}
		f.ID, f.Hostname = info.ID, info.Name
		f.CPUs, f.MemoryBytes, f.Containers = info.NCPU, info.MemTotal, info.Containers
		return nil
	})
	var v struct{ version, api, os, arch string }
	g.Go(func() error {
		ver, err := d.cli.ServerVersion(gctx)
		if err != nil {
			return d.wrap("engine version", err)
		}
		v.version, v.api, v.os, v.arch = ver.Version, ver.APIVersion, ver.Os, ver.Arch
		return nil
	})
	if err := g.Wait(); err != nil {
		return planner.EngineFacts{}, err
	}
	f.Version, f.APIVersion, f.OS, f.Arch = v.version, v.api, v.os, v.arch
	return f, nil
}

// Containers lists every container once, keeps this project's (inspected
// for exact state, health and restart count) and the others that matter to
// it (from the list only: berth never touches them); see
// isForeignOfInterest.
func (d *Node) Containers(ctx context.Context, project string) (own, foreign []planner.Container, err error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, nil, d.wrap("list containers", err)
	}
	var ownIDs []string
	for _, s := range list {
		if s.Labels[planner.LabelProject] == project && project != "" {
			ownIDs = append(ownIDs, s.ID)
			continue
		}
		c := fromSummary(s)
		if isForeignOfInterest(c, project) {
			foreign = append(foreign, c)
		}
	}
	own = make([]planner.Container, len(ownIDs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	var mu sync.Mutex
	var gone []int
	for i, id := range ownIDs {
		g.Go(func() error {
			c, err := d.inspect(gctx, id)
			if errors.Is(err, ErrNotFound) {
				// Removed between list and inspect: it is gone now.
				mu.Lock()
				gone = append(gone, i)
				mu.Unlock()
				return nil
			}
			own[i] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	if len(gone) > 0 {
		sort.Sort(sort.Reverse(sort.IntSlice(gone)))
		for _, i := range gone {
			own = append(own[:i], own[i+1:]...)
		}
	}
	sortContainers(own)
	sortContainers(foreign)
	return own, foreign, nil
}

// isForeignOfInterest reports whether a container outside the project
// matters to a plan: it publishes host ports, its name is in the project's
// namespace ("PROJECT-...") so a create under that name would collide, or it
// belongs to another berth project (its reservations count against the
// node's capacity).
func isForeignOfInterest(c planner.Container, project string) bool {
	return len(c.Ports) > 0 || (project != "" && strings.HasPrefix(c.Name, project+"-")) ||
		c.Labels[planner.LabelProject] != ""
}

func sortContainers(cs []planner.Container) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Name != cs[j].Name {
			return cs[i].Name < cs[j].Name
		}
		return cs[i].ID < cs[j].ID
	})
}

func (d *Node) Inspect(ctx context.Context, id string) (planner.Container, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.inspect(ctx, id)
}

func (d *Node) inspect(ctx context.Context, id string) (planner.Container, error) {
	r, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return planner.Container{}, d.wrap("inspect container "+id, err)
	}
	return fromInspect(r), nil
}

func (d *Node) Images(ctx context.Context) ([]planner.Image, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	list, err := d.cli.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return nil, d.wrap("list images", err)
	}
	out := make([]planner.Image, 0, len(list))
	for _, s := range list {
		img := planner.Image{ID: s.ID, Size: s.Size}
		for _, t := range s.RepoTags {
			if t != "<none>:<none>" {
				img.Tags = append(img.Tags, t)
			}
		}
		for _, t := range s.RepoDigests {
			if t != "<none>@<none>" {
				img.Digests = append(img.Digests, t)
			}
		}
		sort.Strings(img.Tags)
		sort.Strings(img.Digests)
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (d *Node) HostPorts(ctx context.Context) ([]planner.HostPort, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	ports, err := d.hostPorts(ctx)
	if err != nil {
		return nil, d.wrap("read host ports", err)
	}
	return ports, nil
}

func (d *Node) Volumes(ctx context.Context, labels map[string]string) ([]planner.Volume, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	resp, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, d.wrap("list volumes", err)
	}
	out := make([]planner.Volume, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		if v == nil || !labelsMatch(v.Labels, labels) {
			continue
		}
		out = append(out, planner.Volume{Name: v.Name, Labels: v.Labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// labelsMatch reports whether have carries every label of want (an empty
// value matching any value). The engine filters already; this guards
// against an engine that ignores a filter.
func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		hv, ok := have[k]
		if !ok || (v != "" && hv != v) {
			return false
		}
	}
	return true
}

func (d *Node) CreateContainer(ctx context.Context, name string, spec *planner.ContainerSpec) (string, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	cfg, hc, err := dockerConfig(spec)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	resp, err := d.cli.ContainerCreate(ctx, cfg, hc, networkingConfig(spec), nil, name)
	if err != nil {
		return "", d.wrap("create container "+name, err)
	}
	return resp.ID, nil
}

func (d *Node) StartContainer(ctx context.Context, id string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap("start container "+id, d.cli.ContainerStart(ctx, id, container.StartOptions{}))
}

func (d *Node) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	secs := int((grace + time.Second - 1) / time.Second)
	if grace <= 0 {
		secs = 0
	}
	// The engine answers only once the container is down: allow the grace
	// on top of the request timeout.
	ctx, cancel := context.WithTimeout(ctx, d.timeout+time.Duration(secs)*time.Second)
	defer cancel()
	return d.wrap("stop container "+id, d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}))
}

func (d *Node) RenameContainer(ctx context.Context, id, name string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap("rename container "+id+" to "+name, d.cli.ContainerRename(ctx, id, name))
}

// RemoveContainer removes with force (a running or restarting container is
// killed: apply stops with grace first) and with its anonymous volumes.
func (d *Node) RemoveContainer(ctx context.Context, id string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap("remove container "+id, d.cli.ContainerRemove(ctx, id, container.RemoveOptions{RemoveVolumes: true, Force: true}))
}

func (d *Node) UpdateContainer(ctx context.Context, id string, spec *planner.ContainerSpec) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	_, err := d.cli.ContainerUpdate(ctx, id, dockerUpdate(spec))
	return d.wrap("update container "+id, err)
}

func (d *Node) Logs(ctx context.Context, id string, tail int) (string, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	t := "all"
	if tail > 0 {
		t = fmt.Sprint(tail)
	}
	rc, err := d.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: t})
	if err != nil {
		return "", d.wrap("logs of container "+id, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return "", d.wrap("logs of container "+id, err)
	}
	// Without a TTY the stream is multiplexed (8-byte frame headers).
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, bytes.NewReader(raw)); err != nil {
		return string(raw), nil // a TTY container: the raw stream is the text
	}
	return buf.String(), nil
}

func (d *Node) CreateVolume(ctx context.Context, name string, labels map[string]string) (planner.Volume, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	v, err := d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels})
	if err != nil {
		return planner.Volume{}, d.wrap("create volume "+name, err)
	}
	return planner.Volume{Name: v.Name, Labels: v.Labels}, nil
}

func (d *Node) RemoveVolume(ctx context.Context, name string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap("remove volume "+name, d.cli.VolumeRemove(ctx, name, false))
}

func (d *Node) DialContainer(ctx context.Context, addr string) (net.Conn, error) {
	if d.closed.Load() {
		return nil, d.wrap("dial "+addr, errNodeClosed)
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	c, err := d.dial(ctx, addr)
	if err != nil {
		return nil, d.wrap("dial "+addr, err)
	}
	return c, nil
}

func (d *Node) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	if d.closed.Load() {
		return nil, d.wrap("dial unix "+path, errNodeClosed)
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	c, err := d.unixDial(ctx, path)
	if err != nil {
		return nil, d.wrap("dial unix "+path, err)
	}
	return c, nil
}

// LoadImage has no overall deadline (a tarball may take long to send) but
// an idle one: it fails when nothing moves for the request timeout (the
// engine neither reads the tarball nor reports progress; time spent waiting
// for r does not count). ctx and the connection's keep-alive bound it too.
// The load is not quiet so that the engine reports progress while it
// registers the layers, after the upload.
func (d *Node) LoadImage(ctx context.Context, r io.Reader) error {
	ctx, w := d.idleWatch(ctx)
	defer w.stop()
	resp, err := d.cli.ImageLoad(ctx, w.source(r), client.ImageLoadWithQuiet(false))
	if err != nil {
		return d.wrap("load image", w.reason(err))
	}
	defer resp.Body.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(w.progress(resp.Body), io.Discard, 0, false, nil); err != nil {
		return d.wrap("load image", w.reason(err))
	}
	return nil
}

// PullImage has no overall deadline (a pull may take long) but an idle
// one: it fails when the engine reports no progress for the request
// timeout. ctx and the connection's keep-alive bound it too.
func (d *Node) PullImage(ctx context.Context, ref, registryAuth string) error {
	ctx, w := d.idleWatch(ctx)
	defer w.stop()
	rc, err := d.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: registryAuth})
	if err != nil {
		return d.wrap("pull image "+ref, w.reason(err))
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(w.progress(rc), io.Discard, 0, false, nil); err != nil {
		return d.wrap("pull image "+ref, w.reason(err))
	}
	return nil
}

// idleWatch returns ctx cancelled once nothing has moved for the node's
// request timeout (no deadline when it is 0). What moves: a read of the
// stream sent to the engine (source), bytes of the engine's answer
// (progress). While a read of the source is waiting for its data the clock
// stands still: a slow source (the local engine's save feeding several
// nodes) is not this node's stall.
func (d *Node) idleWatch(ctx context.Context) (context.Context, *idleWatch) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &idleWatch{idle: d.timeout, cancel: cancel, done: make(chan struct{})}
	w.touch()
	if w.idle > 0 {
		go w.watch()
	}
	return ctx, w
}

type idleWatch struct {
	idle    time.Duration
	cancel  context.CancelCauseFunc
	done    chan struct{}
	last    atomic.Int64 // UnixNano of the last movement
	waiting atomic.Int32 // reads of the source in progress
	fired   atomic.Pointer[error]
}

func (w *idleWatch) touch() { w.last.Store(time.Now().UnixNano()) }

func (w *idleWatch) watch() {
	tick := max(w.idle/8, time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		if w.waiting.Load() > 0 {
			w.touch()
			continue
		}
		if time.Since(time.Unix(0, w.last.Load())) >= w.idle {
			err := fmt.Errorf("no progress for %s (the request timeout): the engine stopped reading or answering", w.idle)
			w.fired.Store(&err)
			w.cancel(err)
			return
		}
	}
}

func (w *idleWatch) stop() {
	close(w.done)
	w.cancel(nil)
}

// reason returns the idle error when the watch fired, else err.
func (w *idleWatch) reason(err error) error {
	if f := w.fired.Load(); f != nil {
		return *f
	}
	return err
}

func (w *idleWatch) source(r io.Reader) io.Reader { return &sourceReader{r: r, w: w} }

func (w *idleWatch) progress(r io.Reader) io.Reader { return &progressReader{r: r, w: w} }

type sourceReader struct {
	r io.Reader
	w *idleWatch
}

func (s *sourceReader) Read(b []byte) (int, error) {
	s.w.waiting.Add(1)
	n, err := s.r.Read(b)
	s.w.touch()
	s.w.waiting.Add(-1)
	return n, err
}

type progressReader struct {
	r io.Reader
	w *idleWatch
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.w.touch()
	}
	return n, err
}

func (d *Node) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.cli.Close()
	d.tr.CloseIdleConnections()
	if d.close != nil {
		return d.close()
	}
	return nil
}
