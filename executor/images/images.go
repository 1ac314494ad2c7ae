package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/internal/env"
	"github.com/berth-dev/berth/executor/internal/msg"
	"github.com/berth-dev/berth/planner"
)

// Facts are what the planner needs to know about images that lives on
// the machine running berth: the content tag each build would produce, and
// the images the local engine already holds.
type Facts struct {
	BuildImages map[string]string // service -> content-tagged reference
	LocalImages []planner.Image
	// LocalEngineID is the local engine's ID: a node whose engine has it
	// gets built images without a transfer.
	LocalEngineID string
}

// LocalFacts computes build tags (reading the build contexts) and lists
// the local engine's images. An unreachable local engine is not an error
// unless a service has a build block (it has to be built there). It builds
// nothing and sends nothing. Without withLocal (destroy: no image is
// needed) it does nothing at all, so that a destroy works without the build
// contexts. The local engine is found from environ (DOCKER_HOST), an
// os.Environ()-style list.
func LocalFacts(ctx context.Context, cfg *config.Config, withLocal bool, environ []string) (Facts, error) {
	f := Facts{BuildImages: map[string]string{}}
	if !withLocal {
		return f, nil
	}
	needLocal := false
	for _, s := range cfg.Services {
		if s.Build == nil {
			continue
		}
		needLocal = true
		tag, err := BuildTag(s.Build)
		if err != nil {
			return f, fmt.Errorf("service %q: build context %s: %w", s.Name, s.Build.Context, err)
		}
		f.BuildImages[s.Name] = BuildRef(cfg.Project.Name, s, tag)
	}
	n, err := engine.OpenLocal(ctx, environ)
	if err != nil {
		if needLocal {
			return f, fmt.Errorf("the local Docker engine (needed to build images): %w", err)
		}
		return f, nil
	}
	defer n.Close()
	// The engine's ID is read while the images are listed.
	idc := make(chan string, 1)
	go func() {
		info, err := n.Info(ctx)
		if err != nil {
			info.ID = ""
		}
		idc <- info.ID
	}()
	imgs, err := n.Images(ctx)
	id := <-idc
	if err != nil {
		if needLocal {
			return f, fmt.Errorf("list the local engine's images: %w", err)
		}
		return f, nil
	}
	f.LocalImages = imgs
	addLocalLayers(ctx, n, cfg, f)
	f.LocalEngineID = id
	return f, nil
}

// usedRefs returns the normalized references of the images cfg's
// services run (a service with a build block: its content-tagged build).
func usedRefs(cfg *config.Config, f Facts) map[string]bool {
	refs := map[string]bool{}
	for _, s := range cfg.Services {
		ref := s.Image
		if s.Build != nil {
			ref = f.BuildImages[s.Name]
		}
		if ref != "" {
			refs[planner.NormalizeRef(ref)] = true
		}
	}
	return refs
}

func usesImage(img planner.Image, refs map[string]bool) bool {
	for _, t := range img.Tags {
		if refs[planner.NormalizeRef(t)] {
			return true
		}
	}
	return false
}

// addLocalLayers fills in the layers and layer sizes of the local images
// cfg's services use (an inspect and a history each, on the local engine),
// so that the plan can say what a send carries. An image whose layers
// cannot be read keeps none: it is planned as a whole image.
func addLocalLayers(ctx context.Context, n *engine.Node, cfg *config.Config, f Facts) {
	refs := usedRefs(cfg, f)
	for i := range f.LocalImages {
		img := &f.LocalImages[i]
		if !usesImage(*img, refs) {
			continue
		}
		in, err := n.InspectImage(ctx, img.ID)
		if err != nil || len(in.Layers) == 0 {
			continue
		}
		img.Layers = in.Layers
		img.LayerSizes, _ = n.LayerSizes(ctx, img.ID, len(in.Layers))
	}
}

// NodeLayers fills in the layers of the images of every reachable node of
// live that lacks a local image cfg's services use (f from LocalFacts):
// the nodes an image may be sent to, so that the plan can say what will
// travel to them. Other nodes cost nothing. A node whose layers cannot be
// read keeps its images without them: the plan then says the whole image
// travels (apply reads them again before sending anyway). nodes returns a
// node by name; at most parallelism nodes are read at once.
func NodeLayers(ctx context.Context, cfg *config.Config, f Facts, live *planner.Live, nodes func(name string) (Node, error), parallelism int) {
	refs := usedRefs(cfg, f)
	local := map[string]bool{}
	for _, img := range f.LocalImages {
		if len(img.Layers) == 0 {
			continue
		}
		for _, t := range img.Tags {
			if r := planner.NormalizeRef(t); refs[r] {
				local[r] = true
			}
		}
	}
	if len(local) == 0 || live == nil {
		return
	}
	g := errgroup.Group{}
	g.SetLimit(max(parallelism, 1))
	for _, name := range slices.Sorted(maps.Keys(live.Nodes)) {
		st := live.Nodes[name]
		if st == nil || !st.Reachable {
			continue
		}
		has := map[string]bool{}
		for _, img := range st.Images {
			for _, t := range img.Tags {
				has[planner.NormalizeRef(t)] = true
			}
		}
		lacks := false
		for r := range local {
			lacks = lacks || !has[r]
		}
		if !lacks {
			continue
		}
		n, err := nodes(name)
		ln, ok := n.(LayerNode)
		if err != nil || !ok {
			continue
		}
		g.Go(func() error {
			imgs, err := ln.ImageLayers(ctx)
			if err != nil {
				return nil
			}
			byID := map[string][]string{}
			for _, img := range imgs {
				byID[img.ID] = img.Layers
			}
			for i := range st.Images {
				st.Images[i].Layers = byID[st.Images[i].ID]
			}
			return nil
		})
	}
	g.Wait()
}

// BuildRef is the reference a build is tagged with: the repository of the
// service's image (or berth/PROJECT-SERVICE) and the content tag.
func BuildRef(project string, s *config.Service, tag string) string {
	repo := "berth/" + project + "-" + s.Name
	if s.Image != "" {
		repo = s.Image
		// Drop a digest, then a tag (a ':' after the last '/').
		if i := strings.LastIndex(repo, "@"); i >= 0 {
			repo = repo[:i]
		}
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
	}
	return repo + ":" + tag
}

// Event is a finished step of the image step: Kind is build, send, tag or
// pull; Node is set for send, tag and pull.
type Event struct {
	Time    time.Time
	Kind    string
	Node    string
	Message string
}

// Node is what the image step needs of a node. executor.Node satisfies it; a
// node that also has TagImage (a Tagger) gets an image it holds under
// another name tagged rather than sent.
type Node interface {
	Images(ctx context.Context) ([]planner.Image, error)
	LoadImage(ctx context.Context, r io.Reader) error
	PullImage(ctx context.Context, ref, registryAuth string) error
}

// LayerNode is a node that can list its images with their layers (see
// planner.Image.Layers), so that it is sent only the layers it lacks.
// engine.Node implements it; a node that does not gets whole images.
type LayerNode interface {
	ImageLayers(ctx context.Context) ([]planner.Image, error)
}

var _ LayerNode = (*engine.Node)(nil)

// Tagger is a node that can give an image it holds another name, so that a
// node holding the exact image under another tag receives nothing.
type Tagger interface {
	TagImage(ctx context.Context, id, ref string) error
}

// LocalEngine is the Docker engine of the machine running berth: images are
// built there and sent from there. *engine.Node implements it; unit tests
// use a fake.
type LocalEngine interface {
	Images(ctx context.Context) ([]planner.Image, error)
	// InspectImage returns the image ref names (its ID, size and tags), or
	// an error wrapping engine.ErrNotFound.
	InspectImage(ctx context.Context, ref string) (planner.Image, error)
	// BuildImage builds the context tarball and returns the image's ID;
	// line receives the build's output, line by line.
	BuildImage(ctx context.Context, context io.Reader, opts build.ImageBuildOptions, line func(string)) (string, error)
	// SaveImage streams `docker save ref`.
	SaveImage(ctx context.Context, ref string) (io.ReadCloser, error)
	Tagger
	RemoveImage(ctx context.Context, ref string) error
	Close() error
}

var _ LocalEngine = (*engine.Node)(nil)

// Options tune apply's image step.
type Options struct {
	// Progress receives transfer progress (per node: bytes, rate, ETA),
	// build steps and a line per finished step. It must not be the -json
	// stream (use stderr). Nil: quiet.
	Progress io.Writer
	// Terminal redraws the transfer lines in place; otherwise plain lines
	// are printed every few seconds.
	Terminal bool
	// Event receives every finished step.
	Event func(Event)
	// Compress gzips the stream sent to the nodes (once, for all of them).
	// Off by default: it pays only on links slower than the compressor
	// (~75 MB/s of Go source here) and for compressible layers; on LAN or
	// loopback links it costs time (see scripts/bench-images). Default:
	// BERTH_IMAGE_COMPRESS=gzip turns it on.
	Compress bool
	// RateLimit caps the bytes per second sent to each node; 0 means none.
	// Default: BERTH_TEST_SHIP_RATE (bytes per second, test-only), else 0.
	RateLimit int64
	// Parallelism bounds how many nodes are sent to or pull at once.
	// Default 10.
	Parallelism int
	// Environ is the environment, os.Environ()-style: DOCKER_HOST (the
	// local engine), DOCKER_CONFIG and HOME (registry credentials), and
	// the two defaults above. Nil is an empty environment.
	Environ []string
	// HomeDir replaces the user's home directory (~/.docker/config.json).
	HomeDir string
	// Local opens the local engine. Default: engine.OpenLocal over Environ.
	Local func(ctx context.Context) (LocalEngine, error)
	// WholeImages sends whole images even to nodes that hold some of
	// their layers (the behaviour before layer-aware sends; for the
	// benchmark's comparison).
	WholeImages bool
}

// Step is apply's image step: it builds, sends and pulls what the
// plan's Images list says, before any container changes. Transfers and
// pulls run on every node before Run returns; a failure names the node and
// image and leaves no partial image behind (Docker loads a tarball only
// once it is whole).
type Step struct {
	cfg   *config.Config
	nodes func(name string) (Node, error)
	opts  Options
	// auth returns the X-Registry-Auth value for a pull of ref.
	auth func(ref string) (string, error)

	mu   sync.Mutex
	sent map[string]int64
	out  sync.Mutex // serialises lines on opts.Progress
}

// NewStep returns the image step for an apply of cfg; nodes returns a
// node by name, or the error that says why it is unreachable.
func NewStep(cfg *config.Config, nodes func(name string) (Node, error), opts Options) *Step {
	if !opts.Compress && env.Get(opts.Environ, "BERTH_IMAGE_COMPRESS") == "gzip" {
		opts.Compress = true
	}
	if opts.RateLimit == 0 {
		opts.RateLimit, _ = ParseBytes(env.Get(opts.Environ, "BERTH_TEST_SHIP_RATE"))
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = defaultParallelism
	}
	if opts.Local == nil {
		environ := opts.Environ
		opts.Local = func(ctx context.Context) (LocalEngine, error) { return engine.OpenLocal(ctx, environ) }
	}
	st := &Step{cfg: cfg, nodes: nodes, opts: opts, sent: map[string]int64{}}
	creds := newRegistryCreds(opts.Environ, opts.HomeDir)
	st.auth = creds.auth
	return st
}

// defaultParallelism is Options.Parallelism's default, the session's.
const defaultParallelism = 10

// BytesSent returns, per node, the bytes of image streams sent to it so
// far (compressed bytes when Compress is set). A node that received
// nothing is absent.
func (st *Step) BytesSent() map[string]int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[string]int64, len(st.sent))
	for k, v := range st.sent {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

func (st *Step) addSent(node string, n int64) {
	st.mu.Lock()
	st.sent[node] += n
	st.mu.Unlock()
}

func (st *Step) printf(format string, args ...any) {
	if st.opts.Progress == nil {
		return
	}
	st.out.Lock()
	defer st.out.Unlock()
	fmt.Fprintf(st.opts.Progress, format+"\n", args...)
}

func (st *Step) event(kind, node, msg string) {
	if st.opts.Event != nil {
		st.opts.Event(Event{Time: time.Now(), Kind: kind, Node: node, Message: msg})
	}
}

// Run does p's image work: builds first (on the local engine), then sends
// (one save of each image feeds every node that lacks it, in parallel), then
// pulls (on the nodes, in parallel). It stops at the first step that fails,
// once that step has finished on its other nodes.
func (st *Step) Run(ctx context.Context, p *planner.Plan) error {
	var builds, sends, pulls []*planner.ImageAction
	for i := range p.Images {
		ia := &p.Images[i]
		switch ia.Kind {
		case planner.ImageBuild:
			builds = append(builds, ia)
		case planner.ImageSend, planner.ImageTag:
			// A tag is a send that finds the ID on the node.
			sends = append(sends, ia)
		case planner.ImagePull:
			pulls = append(pulls, ia)
		default:
			return fmt.Errorf("image %s: unknown image action %q", ia.Image, ia.Kind)
		}
	}
	var eng LocalEngine
	if len(builds)+len(sends) > 0 {
		var err error
		if eng, err = st.opts.Local(ctx); err != nil {
			return fmt.Errorf("the local Docker engine (images are built and sent from there): %w", err)
		}
		defer eng.Close()
	}
	for _, ia := range builds {
		if err := st.build(ctx, eng, ia); err != nil {
			return err
		}
	}
	for _, ia := range sends {
		if err := st.send(ctx, eng, ia); err != nil {
			return err
		}
	}
	for _, ia := range pulls {
		if err := st.pull(ctx, ia); err != nil {
			return err
		}
	}
	return nil
}

func (st *Step) build(ctx context.Context, eng LocalEngine, ia *planner.ImageAction) error {
	if len(ia.Services) == 0 {
		return fmt.Errorf("build image %s: the plan names no service", ia.Image)
	}
	svc := st.cfg.Service(ia.Services[0])
	if svc == nil || svc.Build == nil {
		return fmt.Errorf("build image %s: service %q has no build block in the configuration", ia.Image, ia.Services[0])
	}
	tag := ia.Image[strings.LastIndex(ia.Image, ":")+1:]
	if BuildRef(st.cfg.Project.Name, svc, tag) != ia.Image {
		return fmt.Errorf("build image %s: service %q now builds %s: run berth plan again", ia.Image, svc.Name, BuildRef(st.cfg.Project.Name, svc, tag))
	}
	start := time.Now()
	st.printf("Building %s for service %q (context %s)", ia.Image, svc.Name, svc.Build.Context)
	id, err := buildFromContext(ctx, eng, buildRequest{Service: svc.Name, Build: svc.Build, Tag: tag}, func(l string) {
		if strings.HasPrefix(l, "Step ") {
			st.printf("  %s", l)
		}
	})
	if err != nil {
		return fmt.Errorf("build image %s for service %q: %w", ia.Image, svc.Name, err)
	}
	refs := []string{ia.Image}
	if svc.Image != "" && planner.NormalizeRef(svc.Image) != planner.NormalizeRef(ia.Image) {
		refs = append(refs, svc.Image)
	}
	for _, ref := range refs {
		if err := eng.TagImage(ctx, id, ref); err != nil {
			return fmt.Errorf("build image %s for service %q: %w", ia.Image, svc.Name, err)
		}
	}
	msg := fmt.Sprintf("built %s (%s) in %s", strings.Join(refs, ", "), planner.ShortID(id), roundDuration(time.Since(start)))
	st.printf("  %s", msg)
	st.event("build", "", msg)
	return nil
}

// holds reports whether node n has the image id, and whether it has it
// tagged ref.
func holds(ctx context.Context, n Node, id, ref string) (has, tagged bool, err error) {
	imgs, err := n.Images(ctx)
	if err != nil {
		return false, false, err
	}
	want := planner.NormalizeRef(ref)
	for _, img := range imgs {
		if img.ID != id {
			continue
		}
		for _, t := range img.Tags {
			if planner.NormalizeRef(t) == want {
				return true, true, nil
			}
		}
		return true, false, nil
	}
	return false, false, nil
}

// send gets the local image ia.Image onto ia.Nodes: a node that holds the
// exact image ID already is only tagged (when it lacks the name) and
// receives nothing; the others get one save of the image, teed to all of
// them in parallel.
func (st *Step) send(ctx context.Context, eng LocalEngine, ia *planner.ImageAction) error {
	img, err := eng.InspectImage(ctx, ia.Image)
	if err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("send image %s: it is not on the local engine (any more): run berth plan again", ia.Image)
		}
		return fmt.Errorf("send image %s: local engine: %w", ia.Image, err)
	}
	if ia.ID != "" && img.ID != ia.ID {
		return fmt.Errorf("send image %s: it is %s on the local engine now, the plan has %s: run berth plan again",
			ia.Image, planner.ShortID(img.ID), planner.ShortID(ia.ID))
	}
	what := fmt.Sprintf("%s (%s, %s)", ia.Image, planner.ShortID(img.ID), humanSize(img.Size))
	var mu sync.Mutex
	var errs []error
	fail := func(node string, err error) {
		mu.Lock()
		errs = append(errs, fmt.Errorf("send image %s to node %s: %w", what, node, err))
		mu.Unlock()
	}
	var dests []*shipDest
	g := errgroup.Group{}
	g.SetLimit(st.opts.Parallelism)
	for _, name := range ia.Nodes {
		n, err := st.nodes(name)
		if err != nil {
			fail(name, err)
			continue
		}
		g.Go(func() error {
			has, tagged, err := holds(ctx, n, img.ID, ia.Image)
			switch {
			case err != nil:
				fail(name, err)
				return nil
			case tagged:
				return nil
			}
			if tg, ok := n.(Tagger); ok && has {
				if err := tg.TagImage(ctx, img.ID, ia.Image); err != nil {
					fail(name, err)
					return nil
				}
				msg := fmt.Sprintf("node %s already had %s: tagged it %s, sent nothing", name, planner.ShortID(img.ID), ia.Image)
				st.printf("  %s", msg)
				st.event("tag", name, msg)
				return nil
			}
			d := &shipDest{node: name, load: n.LoadImage}
			if k := st.sharedLayers(ctx, name, n, img); k > 0 {
				d.skip = k
				d.filter = func(r io.Reader) io.Reader { return stripLayers(r, img.Layers, k) }
				for _, t := range ia.Transfers {
					if t.Node == name && t.Path == planner.PathLayers && t.Layers == len(img.Layers)-k && t.Bytes > 0 {
						d.total = t.Bytes
					}
				}
			}
			mu.Lock()
			dests = append(dests, d)
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	if len(dests) == 0 {
		return nil
	}
	sort.Slice(dests, func(i, j int) bool { return dests[i].node < dests[j].node })
	st.ship(ctx, eng, ia.Image, img, dests)
	// A node that refused the image without the layers it holds gets the
	// whole image (the refused load left nothing behind).
	var retry []*shipDest
	for _, d := range dests {
		st.addSent(d.node, d.sent.Load())
		switch {
		case d.err != nil && d.skip > 0 && ctx.Err() == nil:
			m := fmt.Sprintf("node %s refused %s without the %d layers it holds (%s): sending the whole image", d.node, ia.Image, d.skip, msg.OneLine(d.err.Error()))
			st.printf("  %s", m)
			st.event("send", d.node, m)
			retry = append(retry, &shipDest{node: d.node, load: d.load})
		case d.err != nil:
			fail(d.node, d.err)
		default:
			st.event("send", d.node, st.sentMessage(ia.Image, d, len(img.Layers)))
		}
	}
	if len(retry) > 0 {
		st.ship(ctx, eng, ia.Image, img, retry)
		for _, d := range retry {
			st.addSent(d.node, d.sent.Load())
			if d.err != nil {
				fail(d.node, d.err)
				continue
			}
			st.event("send", d.node, st.sentMessage(ia.Image, d, len(img.Layers))+", after the partial load was refused")
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// sharedLayers returns how many of img's layers (base first) node n holds
// already, so that they are left out of what it is sent: 0 when it holds
// none, when layers are not known, or with WholeImages.
func (st *Step) sharedLayers(ctx context.Context, name string, n Node, img planner.Image) int {
	ln, ok := n.(LayerNode)
	if st.opts.WholeImages || !ok || len(img.Layers) == 0 {
		return 0
	}
	held, err := ln.ImageLayers(ctx)
	if err != nil {
		st.printf("  node %s: its layers could not be read (%s): sending the whole image", name, msg.OneLine(err.Error()))
		return 0
	}
	return planner.SharedLayers(img.Layers, held)
}

// sentMessage is the event of a finished send to d.
func (st *Step) sentMessage(ref string, d *shipDest, layers int) string {
	what := "the whole image"
	if d.skip > 0 {
		what = fmt.Sprintf("%d of %d layers, it held the others", layers-d.skip, layers)
	}
	return fmt.Sprintf("sent %s to node %s: %d bytes (%s) in %s", ref, d.node, d.sent.Load(), what, roundDuration(d.elapsed()))
}

// ship streams one save of ref from the local engine to every dest at once.
// Each dest's outcome is in its fields.
func (st *Step) ship(ctx context.Context, eng LocalEngine, ref string, img planner.Image, dests []*shipDest) {
	nodes := make([]string, len(dests))
	now := time.Now()
	for i, d := range dests {
		nodes[i] = d.node
		if d.skip > 0 {
			nodes[i] += fmt.Sprintf(" (%d of %d layers)", len(img.Layers)-d.skip, len(img.Layers))
		} else {
			d.total = img.Size
		}
		d.start = now
	}
	how := ""
	if st.opts.Compress {
		how = ", gzip"
	}
	st.printf("Sending %s (%s, %s%s) to %s", ref, planner.ShortID(img.ID), humanSize(img.Size), how, strings.Join(nodes, ", "))
	board := newProgressBoard(st.opts.Progress, &st.out, st.opts.Terminal, dests)
	board.start()
	defer board.stop()
	rc, err := eng.SaveImage(ctx, ref)
	if err != nil {
		for _, d := range dests {
			d.err = fmt.Errorf("local engine: %w", err)
		}
		return
	}
	defer rc.Close()
	var src io.Reader = rc
	if st.opts.Compress {
		zr := gzipStream(rc)
		defer zr.Close()
		src = zr
		for _, d := range dests {
			d.total = 0 // compressed size unknown
		}
	}
	fanOut(ctx, src, dests, fanOptions{rate: st.opts.RateLimit})
}

func (st *Step) pull(ctx context.Context, ia *planner.ImageAction) error {
	auth, err := st.auth(ia.Image)
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ia.Image, err)
	}
	st.printf("Pulling %s on %s", ia.Image, strings.Join(ia.Nodes, ", "))
	var mu sync.Mutex
	var errs []error
	g := errgroup.Group{}
	g.SetLimit(st.opts.Parallelism)
	for _, name := range ia.Nodes {
		g.Go(func() error {
			n, err := st.nodes(name)
			if err != nil {
				err = fmt.Errorf("pull image %s: %w", ia.Image, err) // the error names the node
			} else {
				start := time.Now()
				if err = n.PullImage(ctx, ia.Image, auth); err == nil {
					msg := fmt.Sprintf("pulled %s on node %s in %s", ia.Image, name, roundDuration(time.Since(start)))
					st.printf("  %s", msg)
					st.event("pull", name, msg)
					return nil
				}
				err = fmt.Errorf("node %s: %w", name, err) // the error names the pull
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// humanSize is a byte count in decimal units, as the plan shows sizes.
func humanSize(n int64) string { return planner.HumanBytes(n) }

func roundDuration(d time.Duration) time.Duration {
	if d > 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

// ParseBytes reads a byte count: "20MB", "512k", "1000" (bytes; decimal units).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid byte count %q", s)
	}
	return int64(v * float64(mult)), nil
}
