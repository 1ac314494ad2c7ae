package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/docker/docker/api/types/registry"

	"github.com/berth-dev/berth/config"
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
	if v, err := ParseBytes("20MB"); err != nil || v != 20e6 {
		t.Errorf("ParseBytes(20MB) = %d, %v", v, err)
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
	if _, err := LocalFacts(context.Background(), cfg, false, nil); err != nil {
		t.Errorf("destroy's image facts: %v", err)
	}
	if _, err := LocalFacts(context.Background(), cfg, true, nil); err == nil || !strings.Contains(err.Error(), `service "web": build context`) {
		t.Errorf("a missing build context: %v", err)
	}
}
