package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// ImageFacts are what the planner needs to know about images that lives on
// the machine running berth: the content tag each build would produce, and
// the images the local engine already holds.
type ImageFacts struct {
	BuildImages map[string]string // service -> content-tagged reference
	LocalImages []planner.Image
	// LocalEngineID is the local engine's ID: a node whose engine has it
	// gets built images without a transfer.
	LocalEngineID string
}

// LocalImageFacts computes build tags (reading the build contexts) and lists
// the local engine's images. An unreachable local engine is not an error
// unless a service has a build block (it has to be built there). It builds
// nothing and sends nothing. Without withLocal (destroy: no image is
// needed) it does nothing at all, so that a destroy works without the build
// contexts.
func LocalImageFacts(ctx context.Context, cfg *config.Config, withLocal bool) (ImageFacts, error) {
	f := ImageFacts{BuildImages: map[string]string{}}
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
	n, err := LocalEngine(ctx, cfg)
	if err != nil {
		if needLocal {
			return f, fmt.Errorf("the local Docker engine (needed to build images): %w", err)
		}
		return f, nil
	}
	defer n.Close()
	imgs, err := n.Images(ctx)
	if err != nil {
		if needLocal {
			return f, fmt.Errorf("list the local engine's images: %w", err)
		}
		return f, nil
	}
	f.LocalImages = imgs
	if info, err := n.Info(ctx); err == nil {
		f.LocalEngineID = info.ID
	}
	return f, nil
}

// LocalEngine connects to the Docker engine of the machine running berth
// (DOCKER_HOST when it names a unix socket, else the default socket).
func LocalEngine(ctx context.Context, cfg *config.Config) (Node, error) {
	return openLocalEngine(ctx, os.Environ())
}

func openLocalEngine(ctx context.Context, environ []string) (*dockerNode, error) {
	sock, err := localSocket(&config.Node{Name: "local", Address: config.LocalAddress}, environ)
	if err != nil {
		return nil, err
	}
	n, err := NewLocalNode(ctx, "local", sock, DefaultRequestTimeout)
	if err != nil {
		return nil, err
	}
	return n.(*dockerNode), nil
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

// EvImage is an event of apply's image step: Kind is build, send, tag or
// pull; Node is set for send, tag and pull.
const EvImage = "image"

// ImageOptions tune apply's image step.
type ImageOptions struct {
	// Progress receives transfer progress (per node: bytes, rate, ETA),
	// build steps and a line per finished step. It must not be the -json
	// stream (use stderr). Nil: quiet.
	Progress io.Writer
	// Terminal redraws the transfer lines in place; otherwise plain lines
	// are printed every few seconds.
	Terminal bool
	// Event receives an EvImage event for every finished step.
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
}

// ImageStep is apply's image step: it builds, sends and pulls what the
// plan's Images list says, before any container changes. Transfers and
// pulls run on every node before Run returns; a failure names the node and
// image and leaves no partial image behind (Docker loads a tarball only
// once it is whole).
type ImageStep struct {
	cfg  *config.Config
	s    *Session
	opts ImageOptions
	// local opens the local engine (a fake in tests).
	local func(ctx context.Context) (localEngine, error)
	// auth returns the X-Registry-Auth value for a pull of ref.
	auth func(ref string) (string, error)

	mu   sync.Mutex
	sent map[string]int64
	out  sync.Mutex // serialises lines on opts.Progress
}

// NewImageStep returns the image step for an apply of cfg over s's nodes.
func NewImageStep(cfg *config.Config, s *Session, opts ImageOptions) *ImageStep {
	environ := s.opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	if !opts.Compress && getenv(environ, "BERTH_IMAGE_COMPRESS") == "gzip" {
		opts.Compress = true
	}
	if opts.RateLimit == 0 {
		opts.RateLimit, _ = parseBytes(getenv(environ, "BERTH_TEST_SHIP_RATE"))
	}
	st := &ImageStep{cfg: cfg, s: s, opts: opts, sent: map[string]int64{}}
	st.local = func(ctx context.Context) (localEngine, error) { return openLocalEngine(ctx, environ) }
	creds := newRegistryCreds(environ, s.opts.HomeDir)
	st.auth = creds.auth
	return st
}

// BytesSent returns, per node, the bytes of image streams sent to it so
// far (compressed bytes when Compress is set). A node that received
// nothing is absent.
func (st *ImageStep) BytesSent() map[string]int64 {
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

func (st *ImageStep) addSent(node string, n int64) {
	st.mu.Lock()
	st.sent[node] += n
	st.mu.Unlock()
}

func (st *ImageStep) printf(format string, args ...any) {
	if st.opts.Progress == nil {
		return
	}
	st.out.Lock()
	defer st.out.Unlock()
	fmt.Fprintf(st.opts.Progress, format+"\n", args...)
}

func (st *ImageStep) event(kind, node, msg string) {
	if st.opts.Event != nil {
		st.opts.Event(Event{Time: time.Now(), Type: EvImage, Kind: kind, Node: node, Message: msg})
	}
}

// Run does p's image work: builds first (on the local engine), then sends
// (one save of each image feeds every node that lacks it, in parallel), then
// pulls (on the nodes, in parallel). It stops at the first step that fails,
// once that step has finished on its other nodes.
func (st *ImageStep) Run(ctx context.Context, p *planner.Plan) error {
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
	var eng localEngine
	if len(builds)+len(sends) > 0 {
		var err error
		if eng, err = st.local(ctx); err != nil {
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

func (st *ImageStep) build(ctx context.Context, eng localEngine, ia *planner.ImageAction) error {
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
		if err := eng.tagImage(ctx, id, ref); err != nil {
			return fmt.Errorf("build image %s for service %q: %w", ia.Image, svc.Name, err)
		}
	}
	msg := fmt.Sprintf("built %s (%s) in %s", strings.Join(refs, ", "), shortImageID(id), roundDuration(time.Since(start)))
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
func (st *ImageStep) send(ctx context.Context, eng localEngine, ia *planner.ImageAction) error {
	img, err := eng.inspectImage(ctx, ia.Image)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("send image %s: it is not on the local engine (any more): run berth plan again", ia.Image)
		}
		return fmt.Errorf("send image %s: local engine: %w", ia.Image, err)
	}
	if ia.ID != "" && img.ID != ia.ID {
		return fmt.Errorf("send image %s: it is %s on the local engine now, the plan has %s: run berth plan again",
			ia.Image, shortImageID(img.ID), shortImageID(ia.ID))
	}
	what := fmt.Sprintf("%s (%s, %s)", ia.Image, shortImageID(img.ID), humanSize(img.Size))
	var mu sync.Mutex
	var errs []error
	fail := func(node string, err error) {
		mu.Lock()
		errs = append(errs, fmt.Errorf("send image %s to node %s: %w", what, node, err))
		mu.Unlock()
	}
	var dests []*shipDest
	g := errgroup.Group{}
	g.SetLimit(st.s.opts.Parallelism)
	for _, name := range ia.Nodes {
		n, err := st.s.Node(name)
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
			if tg, ok := n.(imageTagger); ok && has {
				if err := tg.tagImage(ctx, img.ID, ia.Image); err != nil {
					fail(name, err)
					return nil
				}
				msg := fmt.Sprintf("node %s already had %s: tagged it %s, sent nothing", name, shortImageID(img.ID), ia.Image)
				st.printf("  %s", msg)
				st.event("tag", name, msg)
				return nil
			}
			mu.Lock()
			dests = append(dests, &shipDest{node: name, load: n.LoadImage})
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	if len(dests) > 0 {
		sort.Slice(dests, func(i, j int) bool { return dests[i].node < dests[j].node })
		st.ship(ctx, eng, ia.Image, img, dests)
		for _, d := range dests {
			st.addSent(d.node, d.sent.Load())
			if d.err != nil {
				fail(d.node, d.err)
				continue
			}
			msg := fmt.Sprintf("sent %s to node %s: %d bytes in %s", ia.Image, d.node, d.sent.Load(), roundDuration(d.elapsed()))
			st.event("send", d.node, msg)
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// ship streams one save of ref from the local engine to every dest at once.
// Each dest's outcome is in its fields.
func (st *ImageStep) ship(ctx context.Context, eng localEngine, ref string, img planner.Image, dests []*shipDest) {
	nodes := make([]string, len(dests))
	now := time.Now()
	for i, d := range dests {
		nodes[i] = d.node
		d.total = img.Size
		d.start = now
	}
	how := ""
	if st.opts.Compress {
		how = ", gzip"
	}
	st.printf("Sending %s (%s, %s%s) to %s", ref, shortImageID(img.ID), humanSize(img.Size), how, strings.Join(nodes, ", "))
	board := newProgressBoard(st.opts.Progress, &st.out, st.opts.Terminal, dests)
	board.start()
	defer board.stop()
	rc, err := eng.saveImage(ctx, ref)
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

func (st *ImageStep) pull(ctx context.Context, ia *planner.ImageAction) error {
	auth, err := st.auth(ia.Image)
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ia.Image, err)
	}
	st.printf("Pulling %s on %s", ia.Image, strings.Join(ia.Nodes, ", "))
	var mu sync.Mutex
	var errs []error
	g := errgroup.Group{}
	g.SetLimit(st.s.opts.Parallelism)
	for _, name := range ia.Nodes {
		g.Go(func() error {
			n, err := st.s.Node(name)
			if err == nil {
				start := time.Now()
				if err = n.PullImage(ctx, ia.Image, auth); err == nil {
					msg := fmt.Sprintf("pulled %s on node %s in %s", ia.Image, name, roundDuration(time.Since(start)))
					st.printf("  %s", msg)
					st.event("pull", name, msg)
					return nil
				}
			}
			mu.Lock()
			errs = append(errs, fmt.Errorf("pull image %s on node %s: %w", ia.Image, name, err))
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

// parseBytes reads "20MB", "512k", "1000" (bytes; decimal units).
func parseBytes(s string) (int64, error) {
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
