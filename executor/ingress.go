package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/executor/proxy"
	"github.com/berth-dev/berth/planner"
)

// This file is apply's side of the ingress: it reads each proxy's table
// during gather and, during apply, keeps every ingress node's proxy serving
// the replicas that may take requests. A new replica is added to every
// proxy once healthy; an old one is removed from every proxy and drained
// before it stops.

// proxyClient is a client of the project's router on n, edgeClient of its
// edge.
func proxyClient(n Node, project string) *proxy.Client {
	sock := planner.IngressAdminSocket(project)
	return proxy.New(func(ctx context.Context) (net.Conn, error) { return n.DialUnix(ctx, sock) })
}

func edgeClient(n Node, project string) *proxy.Client {
	sock := planner.IngressEdgeAdminSocket(project)
	return proxy.New(func(ctx context.Context) (net.Conn, error) { return n.DialUnix(ctx, sock) })
}

// proxyOptions are the options of both proxies of project.
func proxyOptions(project, tls string) proxy.Options {
	return proxy.Options{TLS: tls, Dir: planner.IngressDir(project)}
}

// gatherIngress reads the table of the project's running router on n, or
// returns nil when the node runs none. A proxy that cannot be read counts
// as serving nothing of berth's (the next push repairs it), with the
// error kept for status. The table counts as berth's (Loaded) only when
// the node's edge also runs and serves exactly the table's ports, hosts
// and TLS: else the next apply pushes both.
func gatherIngress(ctx context.Context, n Node, project string, containers []planner.Container) *planner.IngressState {
	running, edge := false, false
	for _, c := range containers {
		if _, _, aside := planner.ParseAsideName(c.Name); !aside && c.Running() {
			switch c.Labels[planner.LabelService] {
			case planner.IngressService:
				running = true
			case planner.IngressEdgeService:
				edge = true
			}
		}
	}
	if !running {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl := proxyClient(n, project)
	defer cl.Close()
	t, o, ok, err := cl.Table(ctx)
	if err != nil {
		return &planner.IngressState{Error: fmt.Sprintf("ingress proxy on %s: %v", n.Name(), err)}
	}
	if ok && o.Dir != planner.IngressDir(project) {
		ok, t = false, nil
	}
	if ok {
		ok = false
		if edge {
			ec := edgeClient(n, project)
			defer ec.Close()
			ok, _ = ec.EdgeServes(ctx, t, o)
		}
	}
	st := &planner.IngressState{Loaded: ok, TLS: o.TLS}
	if st.TLS == "" && ok {
		st.TLS = proxy.TLSOff
	}
	for _, r := range t {
		st.Routes = append(st.Routes, planner.Route(r))
	}
	planner.SortRoutes(st.Routes)
	if ups, err := cl.Upstreams(ctx); err == nil {
		for _, u := range ups {
			st.Upstreams = append(st.Upstreams, planner.UpstreamLoad{Address: u.Address, Requests: u.Requests, Fails: u.Fails})
		}
	}
	return st
}

// router is the route table during one apply and the proxies it goes to.
type router struct {
	ap    *applier
	ip    *planner.IngressPlan
	opts  proxy.Options
	mu    sync.Mutex // held during every change and push, so pushes never interleave
	table map[planner.RouteKey]*planner.Route
	// last is what each node's proxy serves, as far as this apply knows
	// (nil: unknown, push anyway).
	last    map[string][]planner.Route
	clients map[string]*proxy.Client
	edges   map[string]*proxy.Client
	started bool
}

func newRouter(ap *applier) *router {
	ip := ap.plan.Ingress
	if ip == nil || len(ip.Nodes) == 0 {
		return nil
	}
	r := &router{ap: ap, ip: ip, opts: proxyOptions(ap.s.project, ip.TLS), last: map[string][]planner.Route{}, clients: map[string]*proxy.Client{}, edges: map[string]*proxy.Client{}}
	for _, n := range ip.Nodes {
		if n.Loaded {
			if st := ap.live.Node(n.Node); st != nil && st.Ingress != nil && st.Ingress.TLS == ip.TLS {
				r.last[n.Node] = slices.Clone(n.Live)
			}
		}
	}
	r.set(ip.Start)
	return r
}

func (r *router) set(t []planner.Route) {
	r.table = map[planner.RouteKey]*planner.Route{}
	for _, rt := range t {
		rt.Upstreams = slices.Clone(rt.Upstreams)
		r.table[rt.Key()] = &rt
	}
}

// current is the table as it stands, sorted.
func (r *router) current() []planner.Route {
	out := make([]planner.Route, 0, len(r.table))
	for _, p := range r.table {
		rt := *p
		rt.Upstreams = slices.Clone(rt.Upstreams)
		out = append(out, rt)
	}
	planner.SortRoutes(out)
	return out
}

func (r *router) client(node string) (*proxy.Client, error) {
	if c := r.clients[node]; c != nil {
		return c, nil
	}
	n, err := r.ap.s.Node(node)
	if err != nil {
		return nil, err
	}
	c := proxyClient(n, r.ap.s.project)
	r.clients[node] = c
	r.edges[node] = edgeClient(n, r.ap.s.project)
	return c, nil
}

// pushLocked loads the current table into every ingress node's router
// whose table differs (or is unknown), then the edge configuration for it
// into the node's edge (which Caddy skips when it is unchanged: the edge
// reloads only when ports, hosts or TLS change), nodes in parallel. A
// proxy just created may not listen yet: its socket is waited for (up to
// 30 s).
func (r *router) pushLocked(ctx context.Context) error {
	t := r.current()
	pt := make(proxy.Table, len(t))
	for i, rt := range t {
		pt[i] = proxy.Route(rt)
	}
	g := errgroup.Group{}
	var mu sync.Mutex
	var errs []error
	// Which proxies to push to is decided before any push: the pushes
	// write r.last.
	var nodes []planner.IngressNode
	for _, n := range r.ip.Nodes {
		if last, ok := r.last[n.Node]; !ok || !planner.SameRoutes(last, t) {
			nodes = append(nodes, n)
		}
	}
	for _, n := range nodes {
		c, err := r.client(n.Node)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ec := r.edges[n.Node]
		g.Go(func() error {
			err := loadWhenUp(ctx, c.Load, pt, r.opts, r.ap.opts.Poll)
			if err == nil {
				err = loadWhenUp(ctx, ec.LoadEdge, pt, r.opts, r.ap.opts.Poll)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				delete(r.last, n.Node)
				errs = append(errs, fmt.Errorf("ingress proxy on node %s: %w", n.Node, err))
				return nil
			}
			r.last[n.Node] = t
			return nil
		})
	}
	g.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// loadWhenUp loads t, waiting for the admin socket to accept connections
// while the proxy starts (a dial error), at most 30 s.
func loadWhenUp(ctx context.Context, load func(context.Context, proxy.Table, proxy.Options) error, t proxy.Table, o proxy.Options, poll time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := load(wctx, t, o)
		if err == nil || !isDialError(err) {
			return err
		}
		select {
		case <-wctx.Done():
			return err
		case <-time.After(poll):
		}
	}
}

// isDialError reports whether err says the admin socket is not there yet
// (or not listening yet): a proxy that is starting. Dialled locally that is
// "no such file" or "connection refused"; over SSH, OpenSSH refuses the
// direct-streamlocal channel with "open failed" for both.
func isDialError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such file") ||
		strings.Contains(s, `connect failed ("open failed")`)
}

// start pushes the start table where it differs, once per apply.
func (r *router) start(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return nil
	}
	r.started = true
	r.ap.phase("ingress: start routes")
	return r.pushLocked(ctx)
}

// add puts upstreams into the table and pushes it.
func (r *router) add(ctx context.Context, ups []planner.Upstream) error {
	if r == nil || len(ups) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range ups {
		rt := r.table[u.Key()]
		if rt == nil {
			rt = &planner.Route{Service: r.serviceOf(u.Key()), Port: u.Port, Host: u.Host, Path: u.Path}
			r.table[u.Key()] = rt
		}
		if !slices.Contains(rt.Upstreams, u.Address) {
			rt.Upstreams = append(rt.Upstreams, u.Address)
		}
	}
	return r.pushLocked(ctx)
}

func (r *router) serviceOf(k planner.RouteKey) string {
	for _, rt := range r.ip.Routes {
		if rt.Key() == k {
			return rt.Service
		}
	}
	return ""
}

// remove takes upstreams out of the table, pushes it, then waits until no
// proxy has a request in flight to them, at most grace (then goes on: the
// stop's own grace period still lets the container finish).
func (r *router) remove(ctx context.Context, ups []planner.Upstream, grace time.Duration) error {
	if r == nil || len(ups) == 0 {
		return nil
	}
	r.mu.Lock()
	var addrs []string
	for _, u := range ups {
		if rt := r.table[u.Key()]; rt != nil {
			rt.Upstreams = slices.DeleteFunc(rt.Upstreams, func(a string) bool { return a == u.Address })
		}
		addrs = append(addrs, u.Address)
	}
	err := r.pushLocked(ctx)
	clients := make([]*proxy.Client, 0, len(r.ip.Nodes))
	for _, n := range r.ip.Nodes {
		if c, cerr := r.client(n.Node); cerr == nil {
			clients = append(clients, c)
		}
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	drainAll(ctx, clients, addrs, grace)
	return ctx.Err()
}

// drain waits until no proxy has a request in flight to addrs (already
// out of the table), at most grace.
func (r *router) drain(ctx context.Context, addrs []string, grace time.Duration) {
	r.mu.Lock()
	clients := make([]*proxy.Client, 0, len(r.ip.Nodes))
	for _, n := range r.ip.Nodes {
		if c, err := r.client(n.Node); err == nil {
			clients = append(clients, c)
		}
	}
	r.mu.Unlock()
	drainAll(ctx, clients, addrs, grace)
}

func drainAll(ctx context.Context, clients []*proxy.Client, addrs []string, grace time.Duration) {
	dctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Drain(dctx, addrs, 50*time.Millisecond)
		}()
	}
	wg.Wait()
}

// reset sets the table to t and pushes it where it differs.
func (r *router) reset(ctx context.Context, t []planner.Route) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set(t)
	r.started = true
	return r.pushLocked(ctx)
}

func (r *router) close() {
	if r == nil {
		return
	}
	for _, c := range r.clients {
		c.Close()
	}
	for _, c := range r.edges {
		c.Close()
	}
}

// isProxyOnly reports whether every action of a batch is an ingress proxy's.
func isProxyOnly(batch []*planner.Action) bool {
	for _, a := range batch {
		if !planner.IsIngressProxy(a.Service) {
			return false
		}
	}
	return true
}
