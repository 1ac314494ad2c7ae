package executor

// The image step's tests that run it inside an apply (the core's Session,
// Lock and Apply over fake nodes). The images package's own unit tests
// (build contexts, fan-out, progress, registry credentials) are in
// executor/images.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/registry"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/fake"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/internal/errtext"
	"github.com/berth-dev/berth/planner"
)

// ---- build contexts

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustTag(t *testing.T, b *config.Build) string {
	t.Helper()
	tag, err := images.BuildTag(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tag) != 12 {
		t.Fatalf("tag %q is not 12 hex digits", tag)
	}
	return tag
}

// ---- a fake local engine

// fakeEngine is an in-memory local engine: builds read the context tarball,
// saves write a `docker save` tarball that fake.Node.LoadImage understands.
type fakeEngine struct {
	mu       sync.Mutex
	images   map[string]*planner.Image // by ID
	payload  map[string][]byte         // by ID: the layer's content
	contexts [][]string                // file names of each build's context
	removed  []string
	saves    int
	buildErr error
	// onBuild runs while the build reads its context (tests edit the
	// context there).
	onBuild func()
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{images: map[string]*planner.Image{}, payload: map[string][]byte{}}
}

// add puts an image with a layer of size random bytes, tagged ref.
func (e *fakeEngine) add(ref string, size int) planner.Image {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(rand.IntN(256))
	}
	return e.addPayload(ref, p)
}

func (e *fakeEngine) addPayload(ref string, p []byte) planner.Image {
	e.mu.Lock()
	defer e.mu.Unlock()
	sum := sha256.Sum256(p)
	id := "sha256:" + hex.EncodeToString(sum[:])
	img := e.images[id]
	if img == nil {
		img = &planner.Image{ID: id, Size: int64(len(p))}
		e.images[id] = img
		e.payload[id] = p
	}
	if ref != "" {
		e.tagLocked(id, ref)
	}
	return *img
}

func (e *fakeEngine) tagLocked(id, ref string) {
	ref = planner.NormalizeRef(ref)
	for _, img := range e.images {
		img.Tags = slices.DeleteFunc(img.Tags, func(t string) bool { return t == ref })
	}
	e.images[id].Tags = append(e.images[id].Tags, ref)
	sort.Strings(e.images[id].Tags)
}

func (e *fakeEngine) find(ref string) *planner.Image {
	if img, ok := e.images[ref]; ok {
		return img
	}
	for _, img := range e.images {
		if slices.Contains(img.Tags, planner.NormalizeRef(ref)) {
			return img
		}
	}
	return nil
}

func (e *fakeEngine) Images(ctx context.Context) ([]planner.Image, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []planner.Image
	for _, img := range e.images {
		c := *img
		c.Tags = slices.Clone(img.Tags)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (e *fakeEngine) InspectImage(ctx context.Context, ref string) (planner.Image, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img := e.find(ref)
	if img == nil {
		return planner.Image{}, fmt.Errorf("inspect image %s: %w: No such image", ref, ErrNotFound)
	}
	return *img, nil
}

func (e *fakeEngine) BuildImage(ctx context.Context, r io.Reader, opts build.ImageBuildOptions, line func(string)) (string, error) {
	tr := tar.NewReader(r)
	var names []string
	h := sha256.New()
	first := true
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("build image: read context: %w", err)
		}
		if first && e.onBuild != nil {
			e.onBuild()
		}
		first = false
		names = append(names, hdr.Name)
		fmt.Fprintf(h, "%s\x00", hdr.Name)
		io.Copy(h, tr)
	}
	if !slices.Contains(names, opts.Dockerfile) {
		return "", fmt.Errorf("build image: Cannot locate specified Dockerfile: %s", opts.Dockerfile)
	}
	e.mu.Lock()
	e.contexts = append(e.contexts, names)
	e.mu.Unlock()
	if e.buildErr != nil {
		return "", e.buildErr
	}
	line("Step 1/1 : FROM scratch")
	return e.addPayload("", h.Sum(nil)).ID, nil
}

func (e *fakeEngine) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img := e.find(ref)
	if img == nil {
		return nil, fmt.Errorf("save image %s: %w", ref, ErrNotFound)
	}
	e.saves++
	return io.NopCloser(bytes.NewReader(saveTarball(img.ID, ref, e.payload[img.ID]))), nil
}

func (e *fakeEngine) TagImage(ctx context.Context, id, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.images[id] == nil {
		return fmt.Errorf("tag image: %w", ErrNotFound)
	}
	e.tagLocked(id, ref)
	return nil
}

func (e *fakeEngine) RemoveImage(ctx context.Context, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.removed = append(e.removed, ref)
	if img := e.find(ref); img != nil {
		delete(e.images, img.ID)
	}
	return nil
}

func (e *fakeEngine) Close() error { return nil }

// saveTarball is a `docker save` tarball (legacy layout) of one image.
func saveTarball(id, ref string, payload []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hexID := strings.TrimPrefix(id, "sha256:")
	file := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)})
		tw.Write(b)
	}
	file("layer/layer.tar", payload)
	file(hexID+".json", []byte(`{"architecture":"amd64","os":"linux"}`))
	m, _ := json.Marshal([]map[string]any{{"Config": hexID + ".json", "RepoTags": []string{ref}, "Layers": []string{"layer/layer.tar"}}})
	file("manifest.json", m)
	tw.Close()
	return buf.Bytes()
}

// ---- nodes with extra behaviour

// taggingNode is a fake.Node that can tag images (as the Docker nodes can).
type taggingNode struct {
	*fake.Node
	tags []string
}

func (n *taggingNode) TagImage(ctx context.Context, id, ref string) error {
	if err := n.Tag(id, ref); err != nil {
		return fmt.Errorf("tag image: %w", err)
	}
	n.tags = append(n.tags, ref)
	return nil
}

// cutNode fails its load after reading cutAfter bytes (a connection lost
// mid-transfer) and keeps nothing.
type cutNode struct {
	*fake.Node
	cutAfter int64
}

func (n *cutNode) LoadImage(ctx context.Context, r io.Reader) error {
	if _, err := io.CopyN(io.Discard, r, n.cutAfter); err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	return errors.New("load image: connection lost (keep-alive not answered)")
}

// authNode records the registry auth of each pull.
type authNode struct {
	*fake.Node
	mu    sync.Mutex
	auths []string
}

func (n *authNode) PullImage(ctx context.Context, ref, auth string) error {
	n.mu.Lock()
	n.auths = append(n.auths, auth)
	n.mu.Unlock()
	return n.Node.PullImage(ctx, ref, auth)
}

// imageCluster is three fake nodes (node3 can tag), a fake local engine
// and a session.
type imageCluster struct {
	*fakeCluster
	engine *fakeEngine
	tagger *taggingNode
}

func newImageCluster(t *testing.T, wrap func(name string, f *fake.Node) Node) *imageCluster {
	fc := newFakeCluster(t)
	ic := &imageCluster{fakeCluster: fc, engine: newFakeEngine()}
	m := map[string]Node{}
	for name, f := range fc.nodes {
		var n Node = f
		if wrap != nil {
			if w := wrap(name, f); w != nil {
				n = w
			}
		}
		if name == "node3" && n == Node(f) {
			ic.tagger = &taggingNode{Node: f}
			n = ic.tagger
		}
		m[name] = n
	}
	fc.sess = NewSession("demo", m)
	return ic
}

func (ic *imageCluster) step(cfg *config.Config, opts images.Options) *images.Step {
	opts.Local = func(context.Context) (images.LocalEngine, error) { return ic.engine, nil }
	return NewImageStep(cfg, ic.sess, opts)
}

// plan plans cfg with the build tags of cfg's contexts and the fake
// engine's images.
func (ic *imageCluster) plan(cfg *config.Config) *planner.Plan {
	ic.t.Helper()
	opts := planner.Options{BuildImages: map[string]string{}}
	for _, s := range cfg.Services {
		if s.Build != nil {
			opts.BuildImages[s.Name] = images.BuildRef(cfg.Project.Name, s, mustTag(ic.t, s.Build))
		}
	}
	opts.LocalImages, _ = ic.engine.Images(context.Background())
	p, diags := planner.Make(cfg, ic.sess.Gather(context.Background()), opts)
	if diags.HasErrors() {
		ic.t.Fatal(diags)
	}
	return p
}

func (ic *imageCluster) applyWith(cfg *config.Config, st *images.Step) (*planner.Plan, error) {
	ic.t.Helper()
	ctx := context.Background()
	lock, err := ic.sess.Lock(ctx, LockInfo{ApplyID: NewApplyID(), Holder: "test@host", PID: os.Getpid(), Since: time.Now()}, 0)
	if err != nil {
		ic.t.Fatal(err)
	}
	defer lock.Release(ctx)
	p := ic.plan(cfg)
	_, err = ic.sess.Apply(ctx, p, ic.sess.Gather(ctx), lock, ApplyOptions{Poll: 5 * time.Millisecond, Images: st.Run})
	return p, err
}

func buildService(dir, extra string) string {
	return `
service "web" {
  replicas = 3
  build {
    context = "` + dir + `"
  }
  port {
    target    = 8080
    published = 8080
  }
` + fastUpdate + extra + `}
`
}

func imageKinds(p *planner.Plan) []string {
	var out []string
	for _, ia := range p.Images {
		out = append(out, ia.Kind+" "+ia.Image+" "+strings.Join(ia.Nodes, ","))
	}
	return out
}

// A changed build context gives a new tag and a replace of every replica;
// an unchanged one gives no diff. Planning builds and sends nothing.
func TestBuildPlanApplyCycle(t *testing.T) {
	ic := newImageCluster(t, nil)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY server /\n", "server": "v1"})
	cfg := loadHCL(t, buildService(dir, ""))

	tag1 := mustTag(t, cfg.Service("web").Build)
	ref1 := "berth/demo-web:" + tag1
	p := ic.plan(cfg)
	if got, want := imageKinds(p), []string{"build " + ref1 + " ", "send " + ref1 + " node1,node2,node3"}; !slices.Equal(got, want) {
		t.Fatalf("first plan's images = %q, want %q", got, want)
	}
	if len(ic.engine.contexts) != 0 || ic.engine.saves != 0 {
		t.Fatal("planning built or saved an image")
	}

	var progress bytes.Buffer
	st := ic.step(cfg, images.Options{Progress: &progress})
	if _, err := ic.applyWith(cfg, st); err != nil {
		t.Fatalf("apply: %v\n%s", err, progress.String())
	}
	if len(ic.engine.contexts) != 1 || ic.engine.saves != 1 {
		t.Errorf("apply built %d and saved %d times, want 1 and 1", len(ic.engine.contexts), ic.engine.saves)
	}
	sent := st.BytesSent()
	for _, n := range []string{"node1", "node2", "node3"} {
		if sent[n] == 0 {
			t.Errorf("nothing sent to %s: %v", n, sent)
		}
		if _, ok := ic.nodes[n].Image(ref1); !ok {
			t.Errorf("%s lacks %s after apply", n, ref1)
		}
	}
	for _, want := range []string{"Step 1/1 : FROM scratch", "built " + ref1, "node1", "done:"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}

	// Unchanged: no diff, nothing built or sent.
	if p := ic.plan(cfg); !p.Empty() {
		var b strings.Builder
		p.WriteText(&b)
		t.Fatalf("unchanged context gave a plan:\n%s", b.String())
	}
	// Touching the files changes nothing either.
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "server"), future, future)
	if p := ic.plan(cfg); !p.Empty() {
		t.Fatal("touching the context gave a plan")
	}

	// Changed: a new tag, a build, a send and a replace of every replica.
	writeFiles(t, dir, map[string]string{"server": "v2"})
	tag2 := mustTag(t, cfg.Service("web").Build)
	ref2 := "berth/demo-web:" + tag2
	if tag2 == tag1 {
		t.Fatal("a changed context kept its tag")
	}
	p = ic.plan(cfg)
	if got, want := imageKinds(p), []string{"build " + ref2 + " ", "send " + ref2 + " node1,node2,node3"}; !slices.Equal(got, want) {
		t.Fatalf("images after a change = %q, want %q", got, want)
	}
	if _, _, repl, _ := p.Summary(); repl != 3 {
		t.Errorf("a changed context replaces %d replicas, want 3", repl)
	}
	for _, a := range p.Actions {
		if a.Kind != planner.Replace || !strings.Contains(a.Reason, "image") {
			t.Errorf("action %s %s.%d: %s", a.Kind, a.Service, a.Replica, a.Reason)
		}
	}
	st = ic.step(cfg, images.Options{})
	if _, err := ic.applyWith(cfg, st); err != nil {
		t.Fatal(err)
	}
	if p := ic.plan(cfg); !p.Empty() {
		t.Fatal("the plan after applying a change is not empty")
	}

	// With the built image gone from the local engine (another machine, a
	// prune), an unchanged context still gives no diff: nothing is built.
	ic.engine.RemoveImage(context.Background(), ref2)
	if p := ic.plan(cfg); !p.Empty() {
		t.Fatalf("the local engine's lack of an image the nodes hold gave a plan: %q", imageKinds(p))
	}
}

// A build tags the service's image too; a context changed between plan and
// build fails the build and leaves no tag.
func TestBuildImageTagsAndChecks(t *testing.T) {
	ic := newImageCluster(t, nil)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\n", "server": "v1"})
	cfg := loadHCL(t, buildService(dir, `  image = "registry.example.com/web:1.0"`+"\n"))
	tag := mustTag(t, cfg.Service("web").Build)
	ref := "registry.example.com/web:" + tag
	if _, err := ic.applyWith(cfg, ic.step(cfg, images.Options{})); err != nil {
		t.Fatal(err)
	}
	img, err := ic.engine.InspectImage(context.Background(), ref)
	if err != nil || !slices.Contains(img.Tags, "registry.example.com/web:1.0") {
		t.Errorf("built image %v (%v): want tags %s and registry.example.com/web:1.0", img.Tags, err, ref)
	}

	// The context changes while the build reads it.
	writeFiles(t, dir, map[string]string{"server": "v2"})
	p := ic.plan(cfg)
	ic.engine.onBuild = func() { writeFiles(t, dir, map[string]string{"server": "v3, edited during the build"}) }
	st := ic.step(cfg, images.Options{})
	err = st.Run(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "changed since the plan") {
		t.Fatalf("build of a context edited meanwhile: %v", err)
	}
	if len(ic.engine.removed) != 1 {
		t.Errorf("the stray build was not removed: %v", ic.engine.removed)
	}
	if _, err := ic.engine.InspectImage(context.Background(), p.Images[0].Image); err == nil {
		t.Errorf("%s exists after a failed build", p.Images[0].Image)
	}

	// A build error is reported with the service.
	ic.engine.onBuild = nil
	writeFiles(t, dir, map[string]string{"server": "v4"})
	ic.engine.buildErr = errors.New("build image: COPY failed: file not found in build context: stat nope: file does not exist")
	p = ic.plan(cfg)
	err = ic.step(cfg, images.Options{}).Run(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), `for service "web"`) || !strings.Contains(err.Error(), "COPY failed") {
		t.Errorf("build failure: %v", err)
	}
}

// Only nodes that lack the exact image ID receive it: a node holding the ID
// under another name is tagged; one holding the name gets nothing at all.
func TestSendOnlyToNodesLackingTheImageID(t *testing.T) {
	ic := newImageCluster(t, nil)
	img := ic.engine.add("app:1", 300<<10)
	// node2 has app:1 (same ID); node3 has the ID as app:old.
	for _, n := range []string{"node2", "node3"} {
		if err := ic.nodes[n].LoadImage(context.Background(), bytes.NewReader(saveTarball(img.ID, "app:1", ic.engine.payload[img.ID]))); err != nil {
			t.Fatal(err)
		}
	}
	ic.nodes["node3"].SetImageTags(img.ID, "app:old")

	cfg := loadHCL(t, webService("app:1", 3, ""))
	p := ic.plan(cfg)
	if got, want := imageKinds(p), []string{"send app:1 node1", "tag app:1 node3"}; !slices.Equal(got, want) {
		t.Fatalf("images = %q, want %q", got, want)
	}
	var b strings.Builder
	p.WriteText(&b)
	for _, want := range []string{
		"image app:1 " + planner.ShortID(img.ID) + " (307 kB) will be sent: the whole image (307 kB) to node1",
		"is on node3 under another name: it will be tagged, nothing sent",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, b.String())
		}
	}
	st := ic.step(cfg, images.Options{})
	if _, err := ic.applyWith(cfg, st); err != nil {
		t.Fatal(err)
	}
	sent := st.BytesSent()
	if sent["node1"] < 300<<10 || sent["node2"] != 0 || sent["node3"] != 0 {
		t.Errorf("bytes sent = %v; want node1 only", sent)
	}
	if !slices.Equal(ic.tagger.tags, []string{"app:1"}) {
		t.Errorf("node3 tagged %v", ic.tagger.tags)
	}
	if ic.engine.saves != 1 {
		t.Errorf("saves = %d", ic.engine.saves)
	}
}

// A transfer cut off on one node fails the image step naming the node and
// image, leaves that node without the image, the other nodes get theirs
// whole, and no container changes.
func TestSendCutOffChangesNoContainer(t *testing.T) {
	ic := newImageCluster(t, func(name string, f *fake.Node) Node {
		if name == "node2" {
			return &cutNode{Node: f, cutAfter: 2 << 20}
		}
		return nil
	})
	cfg := loadHCL(t, webService("echo:v1", 3, ""))
	if _, err := ic.applyWith(cfg, ic.step(cfg, images.Options{})); err != nil {
		t.Fatal(err)
	}
	before := ic.sess.Gather(context.Background())

	img := ic.engine.add("app:2", 8<<20)
	cfg2 := loadHCL(t, webService("app:2", 3, ""))
	var progress bytes.Buffer
	st := ic.step(cfg2, images.Options{Progress: &progress})
	_, err := ic.applyWith(cfg2, st)
	if err == nil {
		t.Fatal("apply with a transfer cut off succeeded")
	}
	for _, want := range []string{"before any container changed", "node node2", "app:2", "connection lost"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "node1") || strings.Contains(err.Error(), "node3") {
		t.Errorf("error names a node that got the image: %v", err)
	}
	if _, ok := ic.nodes["node2"].Image(img.ID); ok {
		t.Error("node2 holds the image after the cut")
	}
	for _, n := range []string{"node1", "node3"} {
		if _, ok := ic.nodes[n].Image("app:2"); !ok {
			t.Errorf("%s lacks app:2: a failure elsewhere stopped its transfer", n)
		}
	}
	if sent := st.BytesSent(); sent["node2"] < 2<<20 || sent["node2"] >= 8<<20 {
		t.Errorf("bytes sent to node2 = %d, want the cut-off point", sent["node2"])
	}
	if !strings.Contains(progress.String(), "failed after") {
		t.Errorf("progress does not show the failure:\n%s", progress.String())
	}
	after := ic.sess.Gather(context.Background())
	for _, n := range []string{"node1", "node2", "node3"} {
		b, _ := json.Marshal(before.Node(n).Containers)
		a, _ := json.Marshal(after.Node(n).Containers)
		if !bytes.Equal(a, b) {
			t.Errorf("%s's containers changed:\n  before %s\n  after  %s", n, b, a)
		}
	}
}

// gunzipNode decompresses a gzip stream before loading it, as Docker's
// load does.
type gunzipNode struct{ *fake.Node }

func (n *gunzipNode) LoadImage(ctx context.Context, r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	return n.Node.LoadImage(ctx, zr)
}

func TestGzipStreamLoads(t *testing.T) {
	ic := newImageCluster(t, func(name string, f *fake.Node) Node { return &gunzipNode{f} })
	ic.engine.add("app:z", 1<<20)
	cfg := loadHCL(t, webService("app:z", 3, ""))
	st := ic.step(cfg, images.Options{Compress: true})
	if _, err := ic.applyWith(cfg, st); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		if _, ok := ic.nodes[n].Image("app:z"); !ok {
			t.Errorf("%s lacks app:z", n)
		}
	}
}

// ---- pulls and registry credentials

func TestPullWithCredentials(t *testing.T) {
	var nodes []*authNode
	ic := newImageCluster(t, func(name string, f *fake.Node) Node {
		n := &authNode{Node: f}
		nodes = append(nodes, n)
		return n
	})
	for _, f := range ic.nodes {
		f.AddRegistryImage("registry.example.com/team/api:7")
	}
	cfg := loadHCL(t, webService("registry.example.com/team/api:7", 3, ""))
	p := ic.plan(cfg)
	if got, want := imageKinds(p), []string{"pull registry.example.com/team/api:7 node1,node2,node3"}; !slices.Equal(got, want) {
		t.Fatalf("images = %q, want %q", got, want)
	}
	home := t.TempDir()
	writeFiles(t, home, map[string]string{".docker/config.json": `{"auths":{"registry.example.com":{"auth":"` +
		base64.StdEncoding.EncodeToString([]byte("deploy:s3cret-pass")) + `"}}}`})
	st := ic.step(cfg, images.Options{Environ: []string{"HOME=" + home}})
	if _, err := ic.applyWith(cfg, st); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if len(n.auths) != 1 {
			t.Fatalf("%s pulled %d times", n.Name(), len(n.auths))
		}
		ac, err := registry.DecodeAuthConfig(n.auths[0])
		if err != nil || ac.Username != "deploy" || ac.Password != "s3cret-pass" || ac.ServerAddress != "registry.example.com" {
			t.Errorf("%s got auth %+v (%v)", n.Name(), ac, err)
		}
		// Nothing written to the node: only the pull carried it.
		for _, c := range n.Calls() {
			if strings.Contains(c, "s3cret") || strings.Contains(c, n.auths[0]) {
				t.Errorf("%s: call %q carries the credentials", n.Name(), c)
			}
		}
	}

	// A pull that fails names the node and the image, not the secret.
	for _, f := range ic.nodes {
		f.FailNext("PullImage", errors.New("pull image registry.example.com/team/api:8: unauthorized"))
	}
	cfg = loadHCL(t, webService("registry.example.com/team/api:8", 3, ""))
	st = ic.step(cfg, images.Options{Environ: []string{"HOME=" + home}})
	_, err := ic.applyWith(cfg, st)
	if err == nil || !strings.Contains(err.Error(), "node node1: pull image registry.example.com/team/api:8: unauthorized") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("failed pull: %v", err)
	}
	if r := errtext.RepeatedAtJoin(err.Error()); r != "" {
		t.Errorf("repeated context at %q in %v", r, err)
	}
}

// pull = "always" pulls where the image is present; "never" refuses a
// missing image at plan time.
func TestPullPolicies(t *testing.T) {
	ic := newImageCluster(t, nil)
	for _, f := range ic.nodes {
		f.AddRegistryImage("echo:v1")
	}
	cfg := loadHCL(t, webService("echo:v1", 3, `  pull = "always"`+"\n"))
	if got, want := imageKinds(ic.plan(cfg)), []string{"pull echo:v1 node1,node2,node3"}; !slices.Equal(got, want) {
		t.Errorf("pull always: %q, want %q", got, want)
	}
	cfg = loadHCL(t, webService("echo:v9", 3, `  pull = "never"`+"\n"))
	_, diags := planner.Make(cfg, ic.sess.Gather(context.Background()), planner.Options{})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `pull = "never"`) {
		t.Errorf("pull never, image missing: %v", diags)
	}
	// ... but a local image is sent.
	ic.engine.add("echo:v9", 1000)
	if got, want := imageKinds(ic.plan(cfg)), []string{"send echo:v9 node1,node2,node3"}; !slices.Equal(got, want) {
		t.Errorf("pull never, local image: %q, want %q", got, want)
	}
}
