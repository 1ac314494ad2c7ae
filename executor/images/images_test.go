package images

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

	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/registry"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// ---- build context: tag and tarball

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
	tag, err := BuildTag(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tag) != 12 {
		t.Fatalf("tag %q is not 12 hex digits", tag)
	}
	return tag
}

func TestBuildTag(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile":    "FROM scratch\nCOPY . /\n",
		"server":        "binary v1",
		"static/a.css":  "body{}",
		"notes.md":      "ignored",
		"tmp/cache/x":   "ignored too",
		".dockerignore": "*.md\ntmp\n",
	})
	b := &config.Build{Context: dir, Dockerfile: "Dockerfile", Args: map[string]string{"A": "1"}}
	tag := mustTag(t, b)
	if again := mustTag(t, b); again != tag {
		t.Fatalf("the same context gave %s, then %s", tag, again)
	}

	// What does not reach the build does not change the tag.
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "server"), future, future)
	writeFiles(t, dir, map[string]string{"notes.md": "edited", "tmp/cache/y": "new", "README.md": "new, ignored"})
	if got := mustTag(t, b); got != tag {
		t.Errorf("touching a file or editing ignored ones changed the tag: %s -> %s", tag, got)
	}

	// What reaches the build does.
	changes := []struct {
		name   string
		change func()
		undo   func()
	}{
		{"content", func() { writeFiles(t, dir, map[string]string{"server": "binary v2"}) },
			func() { writeFiles(t, dir, map[string]string{"server": "binary v1"}) }},
		{"new file", func() { writeFiles(t, dir, map[string]string{"static/b.css": "x"}) },
			func() { os.Remove(filepath.Join(dir, "static/b.css")) }},
		{"empty directory", func() { os.Mkdir(filepath.Join(dir, "empty"), 0o755) },
			func() { os.Remove(filepath.Join(dir, "empty")) }},
		{"mode", func() { os.Chmod(filepath.Join(dir, "server"), 0o755) },
			func() { os.Chmod(filepath.Join(dir, "server"), 0o644) }},
		{"dockerfile", func() { writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY server /\n"}) },
			func() { writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY . /\n"}) }},
		{"dockerignore", func() { writeFiles(t, dir, map[string]string{".dockerignore": "*.md\n"}) },
			func() { writeFiles(t, dir, map[string]string{".dockerignore": "*.md\ntmp\n"}) }},
		{"arg", func() { b.Args["A"] = "2" }, func() { b.Args["A"] = "1" }},
		{"target", func() { b.Target = "prod" }, func() { b.Target = "" }},
	}
	seen := map[string]string{tag: "original"}
	for _, c := range changes {
		c.change()
		got := mustTag(t, b)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: tag %s, the same as %s", c.name, got, prev)
		}
		seen[got] = c.name
		c.undo()
		if back := mustTag(t, b); back != tag {
			t.Errorf("%s undone: tag %s, want %s", c.name, back, tag)
		}
	}

	if _, err := BuildTag(&config.Build{Context: filepath.Join(dir, "nope"), Dockerfile: "Dockerfile"}); err == nil {
		t.Error("a missing context gave a tag")
	}
	if _, err := BuildTag(&config.Build{Context: dir, Dockerfile: "Nope.Dockerfile"}); err == nil {
		t.Error("a missing Dockerfile gave a tag")
	}
}

// contextFiles tars the build context and lists the tarball's names.
func contextFiles(t *testing.T, b *config.Build) (names []string, dockerfile string) {
	t.Helper()
	bc, err := newBuildContext(b)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bc.write(sha256.New(), tar.NewWriter(&buf)); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
			t.Errorf("%s: owner %d:%d %q, want root", h.Name, h.Uid, h.Gid, h.Uname)
		}
		names = append(names, h.Name)
	}
	return names, bc.dockerfile
}

func TestBuildContextDockerignore(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"build/Dockerfile": "FROM scratch\n",
		"server":           "bin",
		"a.md":             "x",
		"docs/keep.md":     "x",
		"docs/drop.txt":    "x",
		"node_modules/m/i": "x",
		"src/x/y/z.go":     "x",
		"src/x/y/z.txt":    "x",
		".git/HEAD":        "x",
		".dockerignore":    "# comment\n**/*.md\n!docs/keep.md\nnode_modules\nsrc/**/*.go\n.git\nbuild/\n",
	})
	names, df := contextFiles(t, &config.Build{Context: dir, Dockerfile: "build/Dockerfile"})
	want := []string{".dockerignore", "build/Dockerfile", "docs/", "docs/drop.txt", "docs/keep.md", "server", "src/", "src/x/", "src/x/y/", "src/x/y/z.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("context tarball holds\n  %q\nwant\n  %q", names, want)
	}
	if df != "build/Dockerfile" {
		t.Errorf("dockerfile in the tarball = %q", df)
	}

	// A Dockerfile outside the context is sent under a name of its own.
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"Dockerfile.prod": "FROM scratch\n"})
	names, df = contextFiles(t, &config.Build{Context: dir, Dockerfile: filepath.Join(outside, "Dockerfile.prod")})
	if df != outsideDockerfile || !slices.Contains(names, outsideDockerfile) {
		t.Errorf("outside Dockerfile: dockerfile %q, names %q", df, names)
	}
}

// ---- a fake local engine

// fakeEngine is an in-memory local engine: builds read the context tarball,
// saves write a `docker save` tarball that FakeNode.LoadImage understands.
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

func (e *fakeEngine) inspectImage(ctx context.Context, ref string) (planner.Image, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img := e.find(ref)
	if img == nil {
		return planner.Image{}, fmt.Errorf("inspect image %s: %w: No such image", ref, ErrNotFound)
	}
	return *img, nil
}

func (e *fakeEngine) buildImage(ctx context.Context, r io.Reader, opts build.ImageBuildOptions, line func(string)) (string, error) {
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

func (e *fakeEngine) saveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img := e.find(ref)
	if img == nil {
		return nil, fmt.Errorf("save image %s: %w", ref, ErrNotFound)
	}
	e.saves++
	return io.NopCloser(bytes.NewReader(saveTarball(img.ID, ref, e.payload[img.ID]))), nil
}

func (e *fakeEngine) tagImage(ctx context.Context, id, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.images[id] == nil {
		return fmt.Errorf("tag image: %w", ErrNotFound)
	}
	e.tagLocked(id, ref)
	return nil
}

func (e *fakeEngine) removeImage(ctx context.Context, ref string) error {
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

// taggingNode is a FakeNode that can tag images (as the Docker nodes can).
type taggingNode struct {
	*FakeNode
	tags []string
}

func (n *taggingNode) tagImage(ctx context.Context, id, ref string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.images[id] == nil {
		return fmt.Errorf("tag image: %w", ErrNotFound)
	}
	n.tags = append(n.tags, ref)
	n.addImage(id, ref)
	return nil
}

// cutNode fails its load after reading cutAfter bytes (a connection lost
// mid-transfer) and keeps nothing.
type cutNode struct {
	*FakeNode
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
	*FakeNode
	mu    sync.Mutex
	auths []string
}

func (n *authNode) PullImage(ctx context.Context, ref, auth string) error {
	n.mu.Lock()
	n.auths = append(n.auths, auth)
	n.mu.Unlock()
	return n.FakeNode.PullImage(ctx, ref, auth)
}

// imageCluster is three fake nodes (node3 can tag), a fake local engine
// and a session.
type imageCluster struct {
	*fakeCluster
	engine *fakeEngine
	tagger *taggingNode
}

func newImageCluster(t *testing.T, wrap func(name string, f *FakeNode) Node) *imageCluster {
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
			ic.tagger = &taggingNode{FakeNode: f}
			n = ic.tagger
		}
		m[name] = n
	}
	fc.sess = NewSession("demo", m)
	return ic
}

func (ic *imageCluster) step(cfg *config.Config, opts ImageOptions) *ImageStep {
	st := NewImageStep(cfg, ic.sess, opts)
	st.local = func(context.Context) (LocalEngine, error) { return ic.engine, nil }
	return st
}

// plan plans cfg with the build tags of cfg's contexts and the fake
// engine's images.
func (ic *imageCluster) plan(cfg *config.Config) *planner.Plan {
	ic.t.Helper()
	opts := planner.Options{BuildImages: map[string]string{}}
	for _, s := range cfg.Services {
		if s.Build != nil {
			opts.BuildImages[s.Name] = BuildRef(cfg.Project.Name, s, mustTag(ic.t, s.Build))
		}
	}
	opts.LocalImages, _ = ic.engine.Images(context.Background())
	p, diags := planner.Make(cfg, ic.sess.Gather(context.Background()), opts)
	if diags.HasErrors() {
		ic.t.Fatal(diags)
	}
	return p
}

func (ic *imageCluster) applyWith(cfg *config.Config, st *ImageStep) (*planner.Plan, error) {
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
	st := ic.step(cfg, ImageOptions{Progress: &progress})
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
		if img := ic.nodes[n].image(ref1); img == nil {
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
	st = ic.step(cfg, ImageOptions{})
	if _, err := ic.applyWith(cfg, st); err != nil {
		t.Fatal(err)
	}
	if p := ic.plan(cfg); !p.Empty() {
		t.Fatal("the plan after applying a change is not empty")
	}

	// With the built image gone from the local engine (another machine, a
	// prune), an unchanged context still gives no diff: nothing is built.
	ic.engine.removeImage(context.Background(), ref2)
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
	if _, err := ic.applyWith(cfg, ic.step(cfg, ImageOptions{})); err != nil {
		t.Fatal(err)
	}
	img, err := ic.engine.inspectImage(context.Background(), ref)
	if err != nil || !slices.Contains(img.Tags, "registry.example.com/web:1.0") {
		t.Errorf("built image %v (%v): want tags %s and registry.example.com/web:1.0", img.Tags, err, ref)
	}

	// The context changes while the build reads it.
	writeFiles(t, dir, map[string]string{"server": "v2"})
	p := ic.plan(cfg)
	ic.engine.onBuild = func() { writeFiles(t, dir, map[string]string{"server": "v3, edited during the build"}) }
	st := ic.step(cfg, ImageOptions{})
	err = st.Run(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "changed since the plan") {
		t.Fatalf("build of a context edited meanwhile: %v", err)
	}
	if len(ic.engine.removed) != 1 {
		t.Errorf("the stray build was not removed: %v", ic.engine.removed)
	}
	if _, err := ic.engine.inspectImage(context.Background(), p.Images[0].Image); err == nil {
		t.Errorf("%s exists after a failed build", p.Images[0].Image)
	}

	// A build error is reported with the service.
	ic.engine.onBuild = nil
	writeFiles(t, dir, map[string]string{"server": "v4"})
	ic.engine.buildErr = errors.New("build image: COPY failed: file not found in build context: stat nope: file does not exist")
	p = ic.plan(cfg)
	err = ic.step(cfg, ImageOptions{}).Run(context.Background(), p)
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
	ic.nodes["node3"].mu.Lock()
	ic.nodes["node3"].images[img.ID].Tags = []string{"app:old"}
	ic.nodes["node3"].mu.Unlock()

	cfg := loadHCL(t, webService("app:1", 3, ""))
	p := ic.plan(cfg)
	if got, want := imageKinds(p), []string{"send app:1 node1", "tag app:1 node3"}; !slices.Equal(got, want) {
		t.Fatalf("images = %q, want %q", got, want)
	}
	var b strings.Builder
	p.WriteText(&b)
	for _, want := range []string{
		"image app:1 " + shortImageID(img.ID) + " (307 kB) will be sent to node1",
		"is on node3 under another name: it will be tagged, nothing sent",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, b.String())
		}
	}
	st := ic.step(cfg, ImageOptions{})
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
	ic := newImageCluster(t, func(name string, f *FakeNode) Node {
		if name == "node2" {
			return &cutNode{FakeNode: f, cutAfter: 2 << 20}
		}
		return nil
	})
	cfg := loadHCL(t, webService("echo:v1", 3, ""))
	if _, err := ic.applyWith(cfg, ic.step(cfg, ImageOptions{})); err != nil {
		t.Fatal(err)
	}
	before := ic.sess.Gather(context.Background())

	img := ic.engine.add("app:2", 8<<20)
	cfg2 := loadHCL(t, webService("app:2", 3, ""))
	var progress bytes.Buffer
	st := ic.step(cfg2, ImageOptions{Progress: &progress})
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
	if ic.nodes["node2"].image(img.ID) != nil {
		t.Error("node2 holds the image after the cut")
	}
	for _, n := range []string{"node1", "node3"} {
		if ic.nodes[n].image("app:2") == nil {
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

// ---- fan-out

type sinkResult struct {
	sum [32]byte
	n   int64
}

func TestFanOutSlowAndFailingDestinations(t *testing.T) {
	src := make([]byte, 5<<20+123)
	for i := range src {
		src[i] = byte(rand.IntN(256))
	}
	want := sha256.Sum256(src)
	results := make([]sinkResult, 4)
	loader := func(i int, slow time.Duration, failAfter int64) func(context.Context, io.Reader) error {
		return func(ctx context.Context, r io.Reader) error {
			h := sha256.New()
			buf := make([]byte, 64<<10)
			var n int64
			for {
				if failAfter > 0 && n >= failAfter {
					return errors.New("connection reset")
				}
				m, err := r.Read(buf)
				h.Write(buf[:m])
				n += int64(m)
				if slow > 0 {
					time.Sleep(slow)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
			}
			copy(results[i].sum[:], h.Sum(nil))
			results[i].n = n
			return nil
		}
	}
	dests := []*shipDest{
		{node: "fast", load: loader(0, 0, 0)},
		{node: "slow", load: loader(1, time.Millisecond, 0)},
		{node: "fails", load: loader(2, 0, 1<<20)},
		{node: "fast2", load: loader(3, 0, 0)},
	}
	fanOut(context.Background(), bytes.NewReader(src), dests, fanOptions{chunk: 64 << 10, window: 4})
	for i, d := range dests {
		if d.node == "fails" {
			if d.err == nil || d.sent.Load() < 1<<20 {
				t.Errorf("fails: err %v after %d bytes", d.err, d.sent.Load())
			}
			continue
		}
		if d.err != nil {
			t.Errorf("%s: %v", d.node, d.err)
		}
		if results[i].sum != want || results[i].n != int64(len(src)) || d.sent.Load() != int64(len(src)) {
			t.Errorf("%s received %d bytes (counted %d), hash match %v", d.node, results[i].n, d.sent.Load(), results[i].sum == want)
		}
	}
}

type failingReader struct {
	r     io.Reader
	after int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("save image: engine went away")
	}
	if len(p) > f.after {
		p = p[:f.after]
	}
	n, err := f.r.Read(p)
	f.after -= n
	return n, err
}

// A source failing midway reaches every loader as an error, never as a
// clean end of stream (which would load a truncated tarball's contents).
func TestFanOutSourceError(t *testing.T) {
	src := &failingReader{r: bytes.NewReader(make([]byte, 4<<20)), after: 3 << 20}
	var dests []*shipDest
	for _, n := range []string{"a", "b"} {
		dests = append(dests, &shipDest{node: n, load: func(ctx context.Context, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		}})
	}
	fanOut(context.Background(), src, dests, fanOptions{chunk: 256 << 10})
	for _, d := range dests {
		if d.err == nil || !strings.Contains(d.err.Error(), "engine went away") {
			t.Errorf("%s: err = %v", d.node, d.err)
		}
	}
}

func TestFanOutCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	defer pw.Close()
	d := &shipDest{node: "a", load: func(ctx context.Context, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	}}
	done := make(chan struct{})
	go func() { fanOut(ctx, pr, []*shipDest{d}, fanOptions{chunk: 64 << 10}); close(done) }()
	// The source (the save's response body) honours ctx, as an HTTP body
	// does.
	go func() { <-ctx.Done(); pw.CloseWithError(ctx.Err()) }()
	pw.Write(make([]byte, 100<<10))
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("fanOut did not return after cancel")
	}
	if !errors.Is(d.err, context.Canceled) {
		t.Errorf("err = %v", d.err)
	}
}

// gunzipNode decompresses a gzip stream before loading it, as Docker's
// load does.
type gunzipNode struct{ *FakeNode }

func (n *gunzipNode) LoadImage(ctx context.Context, r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	return n.FakeNode.LoadImage(ctx, zr)
}

func TestGzipStreamLoads(t *testing.T) {
	ic := newImageCluster(t, func(name string, f *FakeNode) Node { return &gunzipNode{f} })
	ic.engine.add("app:z", 1<<20)
	cfg := loadHCL(t, webService("app:z", 3, ""))
	st := ic.step(cfg, ImageOptions{Compress: true})
	if _, err := ic.applyWith(cfg, st); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		if ic.nodes[n].image("app:z") == nil {
			t.Errorf("%s lacks app:z", n)
		}
	}
}

func TestRateLimit(t *testing.T) {
	d := &shipDest{node: "a", load: func(ctx context.Context, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	}}
	start := time.Now()
	fanOut(context.Background(), bytes.NewReader(make([]byte, 300<<10)), []*shipDest{d}, fanOptions{chunk: 32 << 10, rate: 1 << 20})
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("300 KiB at 1 MiB/s took %s", el)
	}
	if v, err := parseBytes("20MB"); err != nil || v != 20e6 {
		t.Errorf("parseBytes(20MB) = %d, %v", v, err)
	}
}

// ---- progress

func TestProgressLines(t *testing.T) {
	d := &shipDest{node: "node1", total: 100e6, start: time.Now().Add(-2 * time.Second)}
	d.sent.Store(50e6)
	b := newProgressBoard(io.Discard, &sync.Mutex{}, true, []*shipDest{d})
	line := b.line(d)
	for _, want := range []string{"node1", "[==========          ]", "50 MB / 100 MB (50%)", "MB/s", "ETA 2s"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	var out bytes.Buffer
	b = newProgressBoard(&out, &sync.Mutex{}, false, []*shipDest{d})
	b.start()
	now := time.Now()
	d.end.Store(&now)
	b.stop()
	if got := out.String(); !strings.Contains(got, "node1") || !strings.Contains(got, "done: 50 MB") || strings.Contains(got, "\x1b") {
		t.Errorf("plain progress = %q", got)
	}
}

// ---- pulls and registry credentials

func TestPullWithCredentials(t *testing.T) {
	var nodes []*authNode
	ic := newImageCluster(t, func(name string, f *FakeNode) Node {
		n := &authNode{FakeNode: f}
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
	st := ic.step(cfg, ImageOptions{})
	st.auth = newRegistryCreds([]string{"HOME=" + home}, "").auth
	if _, err := ic.applyWith(cfg, st); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if len(n.auths) != 1 {
			t.Fatalf("%s pulled %d times", n.name, len(n.auths))
		}
		ac, err := registry.DecodeAuthConfig(n.auths[0])
		if err != nil || ac.Username != "deploy" || ac.Password != "s3cret-pass" || ac.ServerAddress != "registry.example.com" {
			t.Errorf("%s got auth %+v (%v)", n.name, ac, err)
		}
		// Nothing written to the node: only the pull carried it.
		for _, c := range n.Calls() {
			if strings.Contains(c, "s3cret") || strings.Contains(c, n.auths[0]) {
				t.Errorf("%s: call %q carries the credentials", n.name, c)
			}
		}
	}

	// A pull that fails names the node and the image, not the secret.
	for _, f := range ic.nodes {
		f.FailNext("PullImage", errors.New("pull image registry.example.com/team/api:8: unauthorized"))
	}
	cfg = loadHCL(t, webService("registry.example.com/team/api:8", 3, ""))
	st = ic.step(cfg, ImageOptions{})
	st.auth = newRegistryCreds([]string{"HOME=" + home}, "").auth
	_, err := ic.applyWith(cfg, st)
	if err == nil || !strings.Contains(err.Error(), "pull image registry.example.com/team/api:8 on node node1") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("failed pull: %v", err)
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

func TestRegistryAuthLookup(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cfgJSON := `{
  "auths": {
    "https://index.docker.io/v1/": {"auth": "` + enc("hubuser:hubpass") + `"},
    "https://ghcr.io": {"auth": "` + enc("gh:ghtoken") + `"},
    "quay.io": {"identitytoken": "idtok"},
    "empty.example.com": {},
    "bad.example.com": {"auth": "%%%"}
  },
  "credHelpers": {"123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"}
}`
	home := t.TempDir()
	writeFiles(t, home, map[string]string{".docker/config.json": cfgJSON})
	rc := newRegistryCreds([]string{"HOME=" + home}, "")
	var helperCalls []string
	rc.helper = func(name, server string) (*credentials.Credentials, error) {
		helperCalls = append(helperCalls, name+" "+server)
		return &credentials.Credentials{ServerURL: server, Username: "AWS", Secret: "ecr-secret"}, nil
	}
	cases := []struct {
		ref                  string
		user, pass, id, addr string
		anon                 bool
	}{
		{ref: "nginx:1.27", user: "hubuser", pass: "hubpass", addr: "https://index.docker.io/v1/"},
		{ref: "docker.io/library/redis", user: "hubuser", pass: "hubpass", addr: "https://index.docker.io/v1/"},
		{ref: "ghcr.io/org/app:1", user: "gh", pass: "ghtoken", addr: "ghcr.io"},
		{ref: "quay.io/x/y@sha256:" + strings.Repeat("a", 64), id: "idtok", addr: "quay.io"},
		{ref: "123.dkr.ecr.eu-west-1.amazonaws.com/app:3", user: "AWS", pass: "ecr-secret", addr: "123.dkr.ecr.eu-west-1.amazonaws.com"},
		{ref: "empty.example.com/a", anon: true},
		{ref: "other.example.com/a", anon: true},
		{ref: "localhost:5000/a", anon: true},
	}
	for _, c := range cases {
		v, err := rc.auth(c.ref)
		if err != nil {
			t.Errorf("%s: %v", c.ref, err)
			continue
		}
		if c.anon {
			if v != "" {
				t.Errorf("%s: auth %q, want none", c.ref, v)
			}
			continue
		}
		if strings.ContainsAny(v, "+/") {
			t.Errorf("%s: %q is not base64url", c.ref, v)
		}
		raw, _ := base64.URLEncoding.DecodeString(v)
		var ac registry.AuthConfig
		if err := json.Unmarshal(raw, &ac); err != nil {
			t.Errorf("%s: %v", c.ref, err)
		}
		if ac.Username != c.user || ac.Password != c.pass || ac.IdentityToken != c.id || ac.ServerAddress != c.addr {
			t.Errorf("%s: %+v", c.ref, ac)
		}
	}
	if !slices.Equal(helperCalls, []string{"ecr-login 123.dkr.ecr.eu-west-1.amazonaws.com"}) {
		t.Errorf("helper calls %q", helperCalls)
	}
	if _, err := rc.auth("bad.example.com/x"); err == nil || strings.Contains(err.Error(), "%%%") {
		t.Errorf("bad auth entry: %v", err)
	}

	// credsStore serves every registry; "not found" is anonymous; an error
	// is reported without the secret.
	writeFiles(t, home, map[string]string{".docker/config.json": `{"credsStore":"desktop","auths":{"ghcr.io":{}}}`})
	rc = newRegistryCreds([]string{"HOME=" + home}, "")
	rc.helper = func(name, server string) (*credentials.Credentials, error) {
		switch server {
		case "ghcr.io":
			return &credentials.Credentials{Username: "<token>", Secret: "pat-123"}, nil
		case "quay.io":
			return nil, errors.New("error getting credentials - err: exit status 1, out: `keychain locked`")
		}
		return nil, credentials.NewErrCredentialsNotFound()
	}
	if v, _ := rc.auth("ghcr.io/a/b"); v == "" {
		t.Error("credsStore: no auth for ghcr.io")
	} else if ac, _ := registry.DecodeAuthConfig(v); ac.IdentityToken != "pat-123" || ac.Username != "" {
		t.Errorf("identity token from helper: %+v", ac)
	}
	if v, err := rc.auth("nginx"); v != "" || err != nil {
		t.Errorf("helper without credentials: %q, %v", v, err)
	}
	if _, err := rc.auth("quay.io/a"); err == nil || !strings.Contains(err.Error(), "docker-credential-desktop") || !strings.Contains(err.Error(), "keychain locked") {
		t.Errorf("helper failure: %v", err)
	}

	// DOCKER_CONFIG wins; no file means anonymous.
	rc = newRegistryCreds([]string{"HOME=" + home, "DOCKER_CONFIG=" + t.TempDir()}, "")
	if v, err := rc.auth("ghcr.io/a/b"); v != "" || err != nil {
		t.Errorf("no config file: %q, %v", v, err)
	}
}

// The real helper program is run with the server on stdin.
func TestCredentialHelperProgram(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 2\necho \"{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"u\\\",\\\"Secret\\\":\\\"p-$server\\\"}\"\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-testhelper"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	c, err := runCredentialHelper("testhelper", "registry.example.com")
	if err != nil || c.Username != "u" || c.Secret != "p-registry.example.com" {
		t.Errorf("helper: %+v, %v", c, err)
	}
}

// destroy needs neither the build contexts nor the local engine.
func TestLocalImageFactsForDestroy(t *testing.T) {
	cfg := &config.Config{Project: config.Project{Name: "demo"}, Services: []*config.Service{
		{Name: "web", Build: &config.Build{Context: filepath.Join(t.TempDir(), "gone"), Dockerfile: "Dockerfile"}}}}
	if _, err := LocalImageFacts(context.Background(), cfg, false); err != nil {
		t.Errorf("destroy's image facts: %v", err)
	}
	if _, err := LocalImageFacts(context.Background(), cfg, true); err == nil || !strings.Contains(err.Error(), `service "web": build context`) {
		t.Errorf("a missing build context: %v", err)
	}
}
