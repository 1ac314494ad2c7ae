package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// The ingress section: what the routing mesh (a Caddy proxy per node, see
// README "Networking") costs a request, and what it buys a rolling update.
//
// Ports 18470-18479 (no e2e test uses them; the bench and e2e never run at
// the same time anyway).
const (
	ingressProxyImage = "berth-test/caddy:2.11.9"
	portIngress3      = 18470 // ingress, 3 replicas: the latency and the update
	portHost3         = 18471 // host mode, 3 replicas (one per node)
	portIngress6      = 18472 // ingress, 6 replicas (two per node)
	ingressLoadPerMax = 8     // load generator: requests in flight per node at most
)

// ingressHCL is service "echo": replicas of image on port `port` (ingress
// mode with a proxy on every node, or host mode), health over HTTP, rolled
// out one replica at a time, start-first (host mode makes it stop-first:
// the new container needs the old one's host port).
func (b *bench) ingressHCL(project, image string, replicas, port int, ingress bool) string {
	head, mode := "", "host"
	if ingress {
		head = fmt.Sprintf("project %q {\n  ingress {\n    image = %q\n  }\n}\n\n", project, ingressProxyImage)
		mode = "ingress"
	}
	return fmt.Sprintf(`%sservice "echo" {
  image             = %q
  replicas          = %d
  stop_grace_period = "3s"

  port {
    target    = 8080
    published = %d
    mode      = %q
  }

  health {
    http     = "/healthz"
    interval = "200ms"
  }

  update {
    parallelism = 1
    order       = "start-first"
    monitor     = %q
  }
}
`, head, image, replicas, port, mode, b.opts.monitor)
}

// ingressProject is one berth project of the section.
type ingressProject struct {
	id       string // series id part
	label    string
	dir      string
	project  string
	replicas int
	port     int
	ingress  bool
	counts   []loadCount // per measured round
	warm     []loadCount
}

func (b *bench) ingress() error {
	n := b.opts.ingressRequests
	lat := b.section("ingress-latency", fmt.Sprintf("6. Latency added by the ingress: %d sequential GETs per round and kind, through node1..3:%d (Caddy) vs straight to a replica's backend port (3 replicas of %s)", n, portIngress3, imageV1))
	upd := b.section("ingress-update", fmt.Sprintf("6b. Rolling update v1 <-> v2 under load (%d req/s to every node's port), parallelism 1, start-first, monitor %s: ingress vs host mode", b.opts.ingressRate, b.opts.monitor))

	i3 := &ingressProject{id: "ingress3", label: "berth apply, ingress, 3 replicas (1 per node)", replicas: 3, port: portIngress3, ingress: true}
	h3 := &ingressProject{id: "host3", label: "berth apply, host mode, 3 replicas (1 per node)", replicas: 3, port: portHost3}
	i6 := &ingressProject{id: "ingress6", label: "berth apply, ingress, 6 replicas (2 per node)", replicas: 6, port: portIngress6, ingress: true}
	projects := []*ingressProject{i3, h3, i6}
	for _, p := range projects {
		var err error
		p.dir, p.project, err = b.berthProject(p.id, "")
		if err != nil {
			return err
		}
	}
	deploy := func(p *ingressProject, image string) error {
		if err := writeFile(p.dir, "main.hcl", b.ingressHCL(p.project, image, p.replicas, p.port, p.ingress)); err != nil {
			return err
		}
		r := b.exec(b.ctx, cmdSpec{name: b.berth, args: []string{"apply", "-auto-approve", p.dir}, timeout: 5 * time.Minute, log: filepath.Join(b.tmp, "berth.log")})
		if r.err != nil {
			return fmt.Errorf("berth apply %s: %s", p.project, r.failure())
		}
		return b.checkImage(b.ctx, p.project, p.replicas, image)
	}

	// Latency: only the 3-replica ingress project runs.
	logf("ingress: deploying %d replicas behind the ingress (not timed)", i3.replicas)
	if err := deploy(i3, imageV1); err != nil {
		return err
	}
	backends, err := b.backends(b.ctx, i3.project, "echo")
	if err != nil {
		return err
	}
	if len(backends) != i3.replicas {
		return fmt.Errorf("%s: %d backends %v, want %d", i3.project, len(backends), backends, i3.replicas)
	}
	if err := b.ingressLatency(lat, backends); err != nil {
		return err
	}

	// The update: the three projects take turns in every round, v1 -> v2
	// in the warm-up round and the odd ones, v2 -> v1 in the even ones.
	logf("ingress: deploying the host-mode and the 6-replica projects (not timed)")
	for _, p := range []*ingressProject{h3, i6} {
		if err := deploy(p, imageV1); err != nil {
			return err
		}
	}
	for _, p := range projects {
		cmp := ""
		if p != i3 {
			cmp = "ingress-update/" + i3.id
		}
		upd.series("ingress-update/"+p.id, p.label, "berth", "s", cmp)
	}
	image := imageV1
	for round := 0; round <= b.opts.rounds && b.ctx.Err() == nil; round++ {
		warm := round == 0
		if image == imageV1 {
			image = imageV2
		} else {
			image = imageV1
		}
		for _, p := range projects {
			if b.ctx.Err() != nil {
				break
			}
			x := b.findSeries("ingress-update/" + p.id)
			if err := writeFile(p.dir, "main.hcl", b.ingressHCL(p.project, image, p.replicas, p.port, p.ingress)); err != nil {
				return err
			}
			g := b.startLoad(p.port, b.opts.ingressRate)
			r := b.exec(b.ctx, cmdSpec{name: b.berth, args: []string{"apply", "-auto-approve", p.dir}, timeout: 5 * time.Minute, log: filepath.Join(b.tmp, "berth.log")})
			c := g.finish()
			total, failed := c.totals()
			if warm {
				p.warm = append(p.warm, c)
			} else {
				p.counts = append(p.counts, c)
			}
			logf("ingress: round %d/%d %s -> %s: %.1f s, %d requests, %d failed", round, b.opts.rounds, p.id, image, r.dur.Seconds(), total, failed)
			if r.err == nil {
				r.err = b.checkImage(b.ctx, p.project, p.replicas, image)
			}
			if r.err != nil {
				x.fail(warm, round, r.failure())
				// Back to a known state for the next round.
				if err := b.resetBerth(context.WithoutCancel(b.ctx), p.dir, p.project); err != nil {
					return err
				}
				if err := deploy(p, image); err != nil {
					return err
				}
				continue
			}
			x.add(warm, r.dur.Seconds())
			if !warm {
				if x.Extra == nil {
					x.Extra = map[string][]float64{}
				}
				x.Extra["requests"] = append(x.Extra["requests"], float64(total))
				x.Extra["failed"] = append(x.Extra["failed"], float64(failed))
			}
		}
	}
	for _, p := range projects {
		x := b.findSeries("ingress-update/" + p.id)
		x.Note = loadNote(p.counts)
	}
	upd.note("every project: service echo (%s <-> %s), health GET /healthz every 200 ms, stop_grace_period 3s, update parallelism 1, order start-first, monitor %s; the same HCL but for the port's mode and the replica count", imageV1, imageV2, b.opts.monitor)
	upd.note("host mode allows one replica per node on a published port, so the fair pair is 3 replicas (one per node) in both modes; there berth turns start-first into stop-first (the new container needs the old one's host port) and says so in the plan. The 6-replica ingress row is the issue's case (2 per node)")
	upd.note("load: per node one goroutine ticking %d times a second, at most %d requests in flight per node (a tick finding %d in flight is skipped, not counted), keep-alive HTTP/1.1, 5 s timeout; failed = connection error, timeout or non-2xx. Started just before 'berth apply' and stopped when it exits; the ratio column is ingress3 over this row", b.opts.ingressRate, ingressLoadPerMax, ingressLoadPerMax)
	upd.note("the proxies of both ingress projects (an edge and a router Caddy per node per project, host network) and all three projects' replicas run throughout; only the project being updated is under load")

	logf("ingress: destroying the projects (not timed)")
	var errs []error
	for _, p := range projects {
		if err := b.resetBerth(context.WithoutCancel(b.ctx), p.dir, p.project); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// loadNote sums the load over the measured rounds.
func loadNote(cs []loadCount) string {
	if len(cs) == 0 {
		return ""
	}
	var total, failed int
	var per []string
	var first string
	for _, c := range cs {
		t, f := c.totals()
		total += t
		failed += f
		per = append(per, fmt.Sprintf("%d/%d", f, t))
		if first == "" && len(c.Errors) > 0 {
			first = c.Errors[0]
		}
	}
	s := fmt.Sprintf("load: %d of %d requests failed over %d rounds (failed/sent per round: %s)", failed, total, len(cs), strings.Join(per, ", "))
	if first != "" {
		s += "; first failure: " + oneLine(first)
	}
	return s
}

// checkImage checks that exactly `replicas` replicas of service echo of the
// project run, all of image.
func (b *bench) checkImage(ctx context.Context, project string, replicas int, image string) error {
	n := 0
	for _, nd := range b.cluster.Nodes {
		cs, err := b.engines[nd.Name].ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", "berth.project="+project), filters.Arg("label", "berth.service=echo"), filters.Arg("status", "running"))})
		if err != nil {
			return fmt.Errorf("%s: %w", nd.Name, err)
		}
		for _, c := range cs {
			if c.Image != image {
				return fmt.Errorf("%s: %s runs %s, want %s", nd.Name, strings.TrimPrefix(c.Names[0], "/"), c.Image, image)
			}
			n++
		}
	}
	if n != replicas {
		return fmt.Errorf("%s: %d replicas of echo run, want %d", project, n, replicas)
	}
	return nil
}

// backends returns the host:port every running replica of the service
// publishes its port 8080 on (the ingress port's backend binding on the
// node's private address), sorted.
func (b *bench) backends(ctx context.Context, project, service string) ([]string, error) {
	var out []string
	for _, nd := range b.cluster.Nodes {
		cli := b.engines[nd.Name]
		cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", "berth.project="+project), filters.Arg("label", "berth.service="+service), filters.Arg("status", "running"))})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", nd.Name, err)
		}
		for _, c := range cs {
			in, err := cli.ContainerInspect(ctx, c.ID)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", nd.Name, err)
			}
			for p, bs := range in.NetworkSettings.Ports {
				if p.Int() != 8080 || p.Proto() != "tcp" {
					continue
				}
				for _, bd := range bs {
					host := bd.HostIP
					if host == "" || host == "0.0.0.0" {
						host = nd.Addr
					}
					out = append(out, host+":"+bd.HostPort)
				}
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// timedGet GETs url and reads the whole answer, which must be 2xx and come
// from the echo image; it returns the time from the request to the last
// byte of the body.
func timedGet(cl *http.Client, url string) (time.Duration, error) {
	t0 := time.Now()
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode/100 != 2 || !strings.HasPrefix(string(body), "echo ") {
		return 0, fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, oneLine(string(body)))
	}
	return d, nil
}

// ingressLatency: per round and connection kind (keep-alive, a new TCP
// connection per request), n GETs through the ingress alternating with n
// straight to a backend (ingress first on even requests, direct first on
// odd ones), over node1..3 and the backends in turn; per round the p50 and
// p99 of each and their difference.
func (b *bench) ingressLatency(sec *Section, backends []string) error {
	n := b.opts.ingressRequests
	type kind struct {
		id, label string
		keepAlive bool
	}
	kinds := []kind{{"ka", "keep-alive", true}, {"new", "new connection per request", false}}
	type acc struct{ ingress, direct []float64 }
	pooled := map[string]*acc{}
	for _, k := range kinds {
		pooled[k.id] = &acc{}
		for _, p := range []string{"p50", "p99"} {
			base := "ingress-latency/" + k.id + "/"
			sec.series(base+"ingress-"+p, fmt.Sprintf("%s, %s: through the ingress", k.label, p), "berth", "ms", "")
			sec.series(base+"direct-"+p, fmt.Sprintf("%s, %s: straight to a backend", k.label, p), "direct", "ms", base+"ingress-"+p)
			sec.series(base+"added-"+p, fmt.Sprintf("%s, %s: added (ingress - direct, per round)", k.label, p), "berth", "ms", "")
		}
	}
	var ingressURLs, directURLs []string
	for _, nd := range b.cluster.Nodes {
		ingressURLs = append(ingressURLs, fmt.Sprintf("http://%s:%d/", nd.Addr, portIngress3))
	}
	for _, be := range backends {
		directURLs = append(directURLs, "http://"+be+"/")
	}
	failures := 0
	var firstErr error
	for round := 0; round <= b.opts.rounds && b.ctx.Err() == nil; round++ {
		warm := round == 0
		for _, k := range kinds {
			newClient := func() *http.Client {
				return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: !k.keepAlive, MaxIdleConnsPerHost: 4}}
			}
			ci, cd := newClient(), newClient()
			var ing, dir []float64
			for i := 0; i < n && b.ctx.Err() == nil; i++ {
				order := []bool{true, false}
				if i%2 == 1 {
					order = []bool{false, true}
				}
				for _, viaIngress := range order {
					cl, url, into := cd, directURLs[i%len(directURLs)], &dir
					if viaIngress {
						cl, url, into = ci, ingressURLs[i%len(ingressURLs)], &ing
					}
					d, err := timedGet(cl, url)
					if err != nil {
						failures++
						if firstErr == nil {
							firstErr = err
						}
						continue
					}
					*into = append(*into, float64(d)/float64(time.Millisecond))
				}
			}
			ci.CloseIdleConnections()
			cd.CloseIdleConnections()
			if len(ing) == 0 || len(dir) == 0 {
				continue
			}
			base := "ingress-latency/" + k.id + "/"
			for _, p := range []float64{50, 99} {
				tag := fmt.Sprintf("p%.0f", p)
				pi, pd := percentile(ing, p), percentile(dir, p)
				b.findSeries(base+"ingress-"+tag).add(warm, pi)
				b.findSeries(base+"direct-"+tag).add(warm, pd)
				b.findSeries(base+"added-"+tag).add(warm, pi-pd)
			}
			if !warm {
				pooled[k.id].ingress = append(pooled[k.id].ingress, ing...)
				pooled[k.id].direct = append(pooled[k.id].direct, dir...)
			}
		}
		logf("ingress: latency round %d/%d done", round, b.opts.rounds)
	}
	for _, k := range kinds {
		a := pooled[k.id]
		if len(a.ingress) == 0 || len(a.direct) == 0 {
			continue
		}
		var parts []string
		for _, p := range []float64{50, 90, 99, 99.9} {
			pi, pd := percentile(a.ingress, p), percentile(a.direct, p)
			parts = append(parts, fmt.Sprintf("p%g %.2f vs %.2f ms (+%.2f)", p, pi, pd, pi-pd))
		}
		sec.note("%s, all %d + %d measured requests pooled, through the ingress vs straight: %s", k.label, len(a.ingress), len(a.direct), strings.Join(parts, "; "))
	}
	sec.note("backends (from the engines: each replica's port 8080 binding on its node's private address): %s; the ingress URLs are node1..3:%d, each routing to any of the 3 replicas (so 2 of 3 requests cross to another node, as a mesh does). The client is the bench on the host, which reaches every node's bridge address; the ratio column is ingress over direct", strings.Join(backends, ", "), portIngress3)
	sec.note("a sample is the time from the request to the body's last byte (Go net/http client, body checked). The first round is a warm-up, not counted; min-max is over the measured rounds' percentiles")
	if failures > 0 {
		sec.note("%d requests failed; first: %v", failures, firstErr)
		return fmt.Errorf("%d latency requests failed; first: %v", failures, firstErr)
	}
	return nil
}

// loadGen sends GETs to every node's port at a steady rate until finished.
type loadGen struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	c    loadCount
}

func (b *bench) startLoad(port, rate int) *loadGen {
	g := &loadGen{stop: make(chan struct{}), c: loadCount{OK: map[string]int{}, Failed: map[string]int{}}}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: ingressLoadPerMax}}
	for _, nd := range b.cluster.Nodes {
		g.wg.Add(1)
		url := fmt.Sprintf("http://%s:%d/", nd.Addr, port)
		go func() {
			defer g.wg.Done()
			sem := make(chan struct{}, ingressLoadPerMax)
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			var inflight sync.WaitGroup
			defer inflight.Wait()
			for {
				select {
				case <-g.stop:
					return
				case <-tick.C:
				}
				select {
				case sem <- struct{}{}:
				default:
					continue
				}
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					defer func() { <-sem }()
					_, err := timedGet(cl, url)
					g.mu.Lock()
					defer g.mu.Unlock()
					if err != nil {
						g.c.Failed[nd.Name]++
						if len(g.c.Errors) < 5 {
							g.c.Errors = append(g.c.Errors, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), nd.Name, err))
						}
						return
					}
					g.c.OK[nd.Name]++
				}()
			}
		}()
	}
	return g
}

// finish stops the load, waits for the requests in flight and returns the
// counts.
func (g *loadGen) finish() loadCount {
	close(g.stop)
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.c
}
