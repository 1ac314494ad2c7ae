package proxy

// Integration tests against the real Caddy built from testdata/caddy (the
// binary the test cluster's image holds), admin API on a unix socket,
// backends in-process on 127.0.0.1.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// caddyBinary returns the Caddy binary built from testdata/caddy, from the
// cache scripts/testcluster uses (caddy_binary there: the same key), building
// it into the cache when missing (about 2 minutes cold). It skips only when
// no go command is there to build it.
func caddyBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build Caddy from testdata/caddy")
	}
	src, err := filepath.Abs("../../testdata/caddy")
	if err != nil {
		t.Fatal(err)
	}
	ver, err := exec.Command(goBin, "version").Output()
	if err != nil {
		t.Fatalf("go version: %v", err)
	}
	// As the script: sha256 of "go version" and sha256sum's lines for the
	// sources, first 16 hex digits.
	key := sha256.New()
	key.Write(ver)
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(key, "%s  %s\n", hex.EncodeToString(sum[:]), f)
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "berth-testcluster", "caddy-"+hex.EncodeToString(key.Sum(nil))[:16])
	bin := filepath.Join(dir, "caddy")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.tmp.%d", bin, os.Getpid())
	t.Logf("building Caddy from testdata/caddy into %s (cold: about 2 minutes)", dir)
	cmd := exec.Command(goBin, "build", "-buildvcs=false", "-trimpath", "-ldflags", "-s -w", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("building testdata/caddy: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// caddy is a running Caddy with its admin API on a unix socket.
type caddy struct {
	sock   string
	client *Client
}

// startCaddy runs Caddy with an empty configuration and returns once its
// admin API answers (Caddy's own --pingback says so).
func startCaddy(t *testing.T) *caddy {
	t.Helper()
	bin := caddyBinary(t)
	// A short directory: a unix socket path has ~108 bytes.
	dir, err := os.MkdirTemp("", "bc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")

	ping, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ping.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "run", "--pingback", ping.Addr().String())
	cmd.Env = []string{
		"CADDY_ADMIN=unix/" + sock,
		"HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
	}
	cmd.Stdin = strings.NewReader("ready")
	out := &syncWriter{w: &logs}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("caddy output:\n%s", logs.String())
		}
	})
	ready := make(chan error, 1)
	go func() {
		c, err := ping.Accept()
		if err != nil {
			ready <- err
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		if string(b) != "ready" {
			err = fmt.Errorf("pingback %q", b)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-exited:
		t.Fatalf("caddy exited: %v\n%s", err, logs.String())
	}
	var d net.Dialer
	c := New(func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "unix", sock) })
	t.Cleanup(c.Close)
	return &caddy{sock: sock, client: c}
}

// pair is berth's ingress on one node: a router and an edge Caddy sharing
// a socket directory, as the two proxy containers share a host directory.
type pair struct {
	router, edge *caddy
	dir          string
}

func startPair(t *testing.T) *pair {
	t.Helper()
	dir, err := os.MkdirTemp("", "bp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &pair{router: startCaddy(t), edge: startCaddy(t), dir: dir}
}

// load loads t into the router, then the edge for t, as apply does.
func (p *pair) load(ctx context.Context, t Table, o Options) error {
	o.Dir = p.dir
	if err := p.router.client.Load(ctx, t, o); err != nil {
		return err
	}
	return p.edge.client.LoadEdge(ctx, t, o)
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// backend answers every request with its name.
func backend(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, name)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// get GETs url with a fresh connection each time (no keep-alive: each
// request is balanced on its own) and returns the status and body.
func get(t *testing.T, c *http.Client, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Close = true
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestCaddyEmptyIsNotBerths(t *testing.T) {
	cd := startCaddy(t)
	ctx := ctxT(t)
	if tab, o, ok, err := cd.client.Table(ctx); err != nil || ok {
		t.Fatalf("Table of a fresh Caddy: %v %v %v %v", tab, o, ok, err)
	}
	// A configuration someone else wrote is not berth's either.
	foreign := fmt.Sprintf(`{"apps":{"http":{"servers":{"srv0":{"listen":[":%d"],"routes":[]}}}}}`, freePort(t))
	if _, err := cd.client.do(ctx, http.MethodPost, "/load", []byte(foreign)); err != nil {
		t.Fatal(err)
	}
	if tab, o, ok, err := cd.client.Table(ctx); err != nil || ok {
		t.Fatalf("Table of a foreign config: %v %v %v %v", tab, o, ok, err)
	}
	// And berth's replaces it.
	if err := cd.client.Load(ctx, Table{}, Options{TLS: "off", Dir: "/run/x"}); err != nil {
		t.Fatal(err)
	}
	if tab, o, ok, err := cd.client.Table(ctx); err != nil || !ok || len(tab) != 0 || o.TLS != "off" || o.Dir != "/run/x" {
		t.Fatalf("Table after loading an empty table: %v %v %v %v", tab, o, ok, err)
	}
}

// Requests reach every upstream, routes by host and path, the table reads
// back exactly, Upstreams lists them.
func TestCaddyRoutes(t *testing.T) {
	pr := startPair(t)
	cd := pr.router
	ctx := ctxT(t)
	web := []string{backend(t, "web1"), backend(t, "web2"), backend(t, "web3")}
	api := backend(t, "api")
	docs := backend(t, "docs")
	port := freePort(t)
	tab := Table{
		{Service: "web", Port: port, Upstreams: web},
		{Service: "api", Port: port, Path: "/api", Upstreams: []string{api}},
		{Service: "docs", Port: port, Host: "docs.test", Upstreams: []string{docs}},
		{Service: "none", Port: port, Path: "/none"},
	}
	if err := pr.load(ctx, tab, Options{}); err != nil {
		t.Fatal(err)
	}
	got, o, ok, err := cd.client.Table(ctx)
	if err != nil || !ok || o != (Options{Dir: pr.dir}) {
		t.Fatalf("Table: %v %v %v", o, ok, err)
	}
	if !got.Equal(tab) {
		t.Errorf("Table read back\n%v\nwant\n%v", got, tab.Sorted())
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	hc := &http.Client{}
	seen := map[string]int{}
	for range 30 {
		code, body := get(t, hc, base+"/", "")
		if code != 200 {
			t.Fatalf("GET /: %d %s", code, body)
		}
		seen[body]++
	}
	for _, name := range []string{"web1", "web2", "web3"} {
		if seen[name] == 0 {
			t.Errorf("%s got no request of 30: %v", name, seen)
		}
	}
	for _, c := range []struct{ path, host, want string }{
		{"/api", "", "api"},
		{"/api/v1/x", "", "api"},
		{"/apix", "", "web"},
		{"/", "docs.test", "docs"},
		{"/api", "docs.test", "docs"},
	} {
		code, body := get(t, hc, base+c.path, c.host)
		if code != 200 || !strings.HasPrefix(body, c.want) {
			t.Errorf("GET %s (Host %q): %d %q, want %s", c.path, c.host, code, body, c.want)
		}
	}
	if code, _ := get(t, hc, base+"/none", ""); code != 503 {
		t.Errorf("route with no upstream: %d, want 503", code)
	}

	ups, err := cd.client.Upstreams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, u := range ups {
		addrs = append(addrs, u.Address)
		if u.Requests != 0 || u.Fails != 0 {
			t.Errorf("idle upstream %v", u)
		}
	}
	want := append(append([]string{}, web...), api, docs)
	if !Table([]Route{{Upstreams: addrs}}).Equal(Table{{Upstreams: want}}) {
		t.Errorf("Upstreams %v, want %v", addrs, want)
	}
}

// A reload lets a slow in-flight request finish; Upstreams counts it on the
// removed upstream and Drain waits for it.
func TestCaddyReloadDrain(t *testing.T) {
	pr := startPair(t)
	cd := pr.router
	ctx := ctxT(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		fmt.Fprint(w, "slow")
	}))
	defer slow.Close()
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // before slow.Close, which waits for the handler
	old := slow.Listener.Addr().String()
	fresh := backend(t, "fresh")
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := pr.load(ctx, Table{{Service: "web", Port: port, Upstreams: []string{old}}}, Options{}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived

	next := Table{{Service: "web", Port: port, Upstreams: []string{fresh}}}
	if err := pr.load(ctx, next, Options{}); err != nil {
		t.Fatal(err)
	}
	if got, _, ok, err := cd.client.Table(ctx); err != nil || !ok || !got.Equal(next) {
		t.Fatalf("Table after reload: %v %v %v", got, ok, err)
	}
	// New requests go to the new upstream while the old one still works.
	if code, body := get(t, &http.Client{}, base+"/", ""); code != 200 || body != "fresh" {
		t.Errorf("GET after reload: %d %q", code, body)
	}
	ups, err := cd.client.Upstreams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesContains(ups, Upstream{Address: old, Requests: 1}) {
		t.Errorf("Upstreams %v: want %s with 1 request in flight", ups, old)
	}
	// Drain does not return while the request is in flight: bounded by
	// its context, it fails naming the busy upstream.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = cd.client.Drain(short, []string{old, fresh}, 20*time.Millisecond)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "drain: "+old+" (1) still in flight") {
		t.Fatalf("Drain with a request in flight: %v", err)
	}
	drained := make(chan error, 1)
	go func() { drained <- cd.client.Drain(ctx, []string{old}, 10*time.Millisecond) }()
	free()
	r := <-done
	if r.err != nil || r.code != 200 || r.body != "slow" {
		t.Fatalf("in-flight request across the reload: %d %q %v", r.code, r.body, r.err)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
}

func slicesContains(ups []Upstream, u Upstream) bool {
	for _, x := range ups {
		if x.Address == u.Address && x.Requests == u.Requests {
			return true
		}
	}
	return false
}

// An upstream that refuses connections (a stopped replica) costs no failed
// request: each is retried on the other.
func TestCaddyRetriesRefused(t *testing.T) {
	pr := startPair(t)
	cd := pr.router
	ctx := ctxT(t)
	live := backend(t, "live")
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port := freePort(t)
	if err := pr.load(ctx, Table{{Service: "web", Port: port, Upstreams: []string{live, dead}}}, Options{}); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	for i := range 20 {
		code, body := get(t, hc, fmt.Sprintf("http://127.0.0.1:%d/", port), "")
		if code != 200 || body != "live" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	ups, err := cd.client.Upstreams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		if u.Address == dead && u.Fails == 0 {
			t.Errorf("refused upstream shows no failure: %v", ups)
		}
	}
}

// TLS internal: HTTPS with a certificate from Caddy's local CA, offline,
// for a route with a host and for one without.
func TestCaddyTLSInternal(t *testing.T) {
	pr := startPair(t)
	cd := pr.router
	ctx := ctxT(t)
	app := backend(t, "app")
	any := backend(t, "any")
	port := freePort(t)
	tab := Table{
		{Service: "app", Port: port, Host: "app.test", Upstreams: []string{app}},
		{Service: "any", Port: port, Upstreams: []string{any}},
	}
	o := Options{TLS: TLSInternal}
	if err := pr.load(ctx, tab, o); err != nil {
		t.Fatal(err)
	}
	if got, gotO, ok, err := cd.client.Table(ctx); err != nil || !ok || gotO != (Options{TLS: o.TLS, Dir: pr.dir}) || !got.Equal(tab) {
		t.Fatalf("Table: %v %v %v %v", got, gotO, ok, err)
	}
	// The CA's root, as the edge's PKI app gives it (the edge holds the
	// certificates).
	raw, err := pr.edge.client.do(ctx, http.MethodGet, "/pki/ca/local", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ca struct {
		Root string `json:"root_certificate"`
	}
	if err := json.Unmarshal(raw, &ca); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca.Root)) {
		t.Fatalf("no root certificate in %s", raw)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	for _, c := range []struct{ host, want string }{{"app.test", "app"}, {"other.test", "any"}} {
		code, body := get(t, hc, fmt.Sprintf("https://%s:%d/", c.host, port), "")
		if code != 200 || body != c.want {
			t.Errorf("GET https://%s: %d %q, want %s", c.host, code, body, c.want)
		}
	}
	// Plain HTTP is not served there.
	if resp, err := http.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on a TLS port: %d", resp.StatusCode)
		}
	} else if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "malformed") {
		t.Logf("plain HTTP on a TLS port: %v", err)
	}
}

// The point of the edge: the router reloads (every route change of an
// update) while requests keep coming, on kept-alive connections and on new
// ones, and not one fails. A single Caddy serving the ports itself resets
// about one connection in two reloads under this load (its listeners are
// re-created at every reload).
func TestCaddyRouterReloadsLoseNothing(t *testing.T) {
	pr := startPair(t)
	ctx := ctxT(t)
	a, b, c := backend(t, "a"), backend(t, "b"), backend(t, "c")
	port := freePort(t)
	tables := []Table{
		{{Service: "web", Port: port, Upstreams: []string{a, b}}},
		{{Service: "web", Port: port, Upstreams: []string{a, c}}},
	}
	if err := pr.load(ctx, tables[0], Options{}); err != nil {
		t.Fatal(err)
	}
	edgeBefore, err := pr.edge.client.do(ctx, http.MethodGet, "/config/", nil)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	stop := make(chan struct{})
	var mu sync.Mutex
	var total int
	var failures []string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: w%2 == 0}}
			defer hc.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := hc.Get(url)
				msg := ""
				if err != nil {
					msg = err.Error()
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						msg = resp.Status
					}
				}
				mu.Lock()
				total++
				if msg != "" {
					failures = append(failures, msg)
				}
				mu.Unlock()
			}
		}()
	}
	const reloads = 60
	for i := range reloads {
		if err := pr.load(ctx, tables[(i+1)%2], Options{}); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d router reloads, %d requests, %d failed", reloads, total, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across %d router reloads; first: %s", len(failures), total, reloads, failures[0])
	}
	if total < reloads {
		t.Errorf("only %d requests: the load did not run", total)
	}
	// The edge was never reloaded: its configuration is what it was.
	edgeAfter, err := pr.edge.client.do(ctx, http.MethodGet, "/config/", nil)
	if err != nil || !bytes.Equal(edgeBefore, edgeAfter) {
		t.Errorf("edge configuration changed: %v\n%s\n%s", err, edgeBefore, edgeAfter)
	}
	if ok, err := pr.edge.client.EdgeServes(ctx, tables[1], Options{Dir: pr.dir}); err != nil || !ok {
		t.Errorf("EdgeServes: %v %v", ok, err)
	}
	if ok, _ := pr.edge.client.EdgeServes(ctx, Table{{Service: "web", Port: port + 1}}, Options{Dir: pr.dir}); ok {
		t.Error("EdgeServes says yes for another port")
	}
}
