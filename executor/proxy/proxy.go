// Package proxy drives an ingress proxy (Caddy) through its admin API: it
// generates the Caddy JSON configuration for a route Table, loads it, reads it
// back, reports the upstreams' load and waits for removed upstreams to drain.
//
// It knows nothing of nodes, plans or containers: a Client talks over any
// dial function (Node.DialUnix to the admin socket on an ingress node, or a
// plain unix dial in tests). The configuration is berth's own: every object
// berth cannot rebuild exactly makes Table report ok=false, so a proxy
// configured by hand (or by another tool) is never mistaken for berth's.
package proxy

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Route sends the HTTP requests that arrive on Port (every ingress node
// listens on it) with Host (any host when empty) and a path under Path (a
// prefix such as "/api"; "" matches all) to Upstreams, balanced round robin.
type Route struct {
	Service   string   `json:"service"`
	Port      int      `json:"port"`
	Host      string   `json:"host,omitempty"`
	Path      string   `json:"path,omitempty"` // prefix such as "/api"; "" matches all
	Upstreams []string `json:"upstreams"`      // "ip:port", sorted
}

// Table is the routes of every ingress node of a project: the same on each.
type Table []Route // sorted by Port, Host, Path, Service

// Options are the proxy's settings besides the routes.
type Options struct {
	// TLS is "" or "off" (plain HTTP), "internal" (HTTPS with certificates
	// from Caddy's own local CA: works offline, for tests), or "auto"
	// (HTTPS with certificates from ACME, for routes with a Host).
	TLS string
	// Dir is the directory, on the node and at the same path in both
	// proxy containers, of the router's sockets (PortSocket).
	Dir string
}

// TLS modes.
const (
	TLSOff      = "off"
	TLSInternal = "internal"
	TLSAuto     = "auto"
)

func (o Options) tls() string {
	if o.TLS == "" {
		return TLSOff
	}
	return o.TLS
}

// Sorted returns a copy of t in its canonical order (routes by Port, Host,
// Path, Service; each route's upstreams sorted), the order Table reads
// back in.
func (t Table) Sorted() Table {
	out := make(Table, len(t))
	for i, r := range t {
		r.Upstreams = slices.Clone(r.Upstreams)
		if r.Upstreams == nil {
			r.Upstreams = []string{}
		}
		slices.Sort(r.Upstreams)
		out[i] = r
	}
	slices.SortFunc(out, compareRoutes)
	return out
}

func compareRoutes(a, b Route) int {
	return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Path, b.Path), cmp.Compare(a.Service, b.Service))
}

// Equal reports whether t and u route the same (in canonical order).
func (t Table) Equal(u Table) bool {
	return slices.EqualFunc(t.Sorted(), u.Sorted(), func(a, b Route) bool {
		return a.Service == b.Service && a.Port == b.Port && a.Host == b.Host &&
			a.Path == b.Path && slices.Equal(a.Upstreams, b.Upstreams)
	})
}

// Validate checks what Config relies on: ports in range, paths starting with
// "/", upstreams "host:port", no two routes with one port, host and path.
func (t Table) Validate() error {
	seen := map[string]string{}
	for _, r := range t {
		if r.Port < 1 || r.Port > 65535 {
			return fmt.Errorf("route of %s: port %d out of range", r.Service, r.Port)
		}
		if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
			return fmt.Errorf("route of %s on port %d: path %q does not start with /", r.Service, r.Port, r.Path)
		}
		if strings.ContainsAny(r.Path, "*?[]") || strings.ContainsAny(r.Host, "*/ ") {
			return fmt.Errorf("route of %s on port %d: host %q or path %q has a wildcard or a character a prefix cannot hold", r.Service, r.Port, r.Host, r.Path)
		}
		key := strconv.Itoa(r.Port) + " " + r.Host + " " + r.Path
		if other, ok := seen[key]; ok {
			return fmt.Errorf("routes of %s and %s both take port %d host %q path %q", other, r.Service, r.Port, r.Host, r.Path)
		}
		seen[key] = r.Service
		for _, u := range r.Upstreams {
			if _, p, err := net.SplitHostPort(u); err != nil || p == "" {
				return fmt.Errorf("route of %s on port %d: upstream %q is not host:port", r.Service, r.Port, u)
			}
		}
	}
	return nil
}

// Diff counts the upstreams added and removed over all routes from old to
// new (a route is known by its port, host, path and service): what the plan
// shows as "+2 -2".
func Diff(old, new Table) (add, remove int) {
	key := func(r Route) string {
		return fmt.Sprintf("%d\x00%s\x00%s\x00%s", r.Port, r.Host, r.Path, r.Service)
	}
	set := func(t Table) map[string]map[string]bool {
		m := map[string]map[string]bool{}
		for _, r := range t {
			k := key(r)
			if m[k] == nil {
				m[k] = map[string]bool{}
			}
			for _, u := range r.Upstreams {
				m[k][u] = true
			}
		}
		return m
	}
	o, n := set(old), set(new)
	for k, us := range n {
		for u := range us {
			if !o[k][u] {
				add++
			}
		}
	}
	for k, us := range o {
		for u := range us {
			if !n[k][u] {
				remove++
			}
		}
	}
	return add, remove
}
