package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Tuning of every reverse_proxy handler berth writes.
const (
	// tryDuration is how long a request may keep trying upstreams when the
	// one picked refuses the connection (a replica stopping, or not yet
	// listening): it is retried on another, so no request fails.
	tryDuration = "5s"
	// tryInterval is the wait between two tries.
	tryInterval = "100ms"
	// failDuration is how long a failed upstream is remembered (passive
	// health check): with maxFails failures in that window, it gets no
	// requests until the window passes.
	failDuration = "3s"
	maxFails     = 1
)

// marker is the @id of the http app of every router configuration berth
// writes; the TLS option follows it. edgeMarker is the edge's.
const (
	marker     = "berth-ingress:"
	edgeMarker = "berth-ingress-edge:"
)

// The edge's tuning: a request the router does not take (it is starting,
// or restarting for a new image) is retried until edgeTryDuration, every
// edgeTryInterval. A reload of the router never needs it: the router's
// sockets live through reloads.
const (
	edgeTryDuration = "10s"
	edgeTryInterval = "50ms"
)

// PortSocket is the unix socket, in dir, on which the router serves the
// routes of the published port: the edge forwards the port's requests
// there.
func PortSocket(dir string, port int) string {
	return dir + "/port-" + strconv.Itoa(port) + ".sock"
}

// serviceVar is the request variable (vars handler) each route sets to its
// service's name: it names the route's service in Caddy's logs and lets
// Table read the service back.
const serviceVar = "berth_service"

// Config returns the router's Caddy JSON configuration (for POST /load)
// that serves t with o: per published port, a server on PortSocket that
// routes by host and path and balances over the upstreams. The admin
// listener is not part of it: the proxy container sets it (CADDY_ADMIN),
// and a loaded configuration keeps it.
func Config(t Table, o Options) ([]byte, error) {
	m, err := configMap(t, o)
	if err != nil {
		return nil, err
	}
	return encode(m)
}

// EdgeConfig returns the edge's Caddy JSON configuration for t and o: per
// published port, a server listening on the port (with TLS when o asks)
// that hands every request to the router's socket for the port. It depends
// only on the ports, the hosts (certificates) and the TLS mode, so a change
// of upstreams never reloads the edge, and the listening sockets of the
// ports never close during an update.
func EdgeConfig(t Table, o Options) ([]byte, error) {
	m, err := edgeMap(t, o)
	if err != nil {
		return nil, err
	}
	return encode(m)
}

func encode(m obj) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type obj = map[string]any

func configMap(t Table, o Options) (obj, error) {
	switch o.TLS {
	case "", TLSOff, TLSInternal, TLSAuto:
	default:
		return nil, fmt.Errorf("ingress tls %q: want off, internal or auto", o.TLS)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(o.Dir, "/") {
		return nil, fmt.Errorf("ingress socket directory %q: want an absolute path", o.Dir)
	}
	t = t.Sorted()

	var ports []int
	byPort := map[int][]Route{}
	for _, r := range t {
		if byPort[r.Port] == nil {
			ports = append(ports, r.Port)
		}
		byPort[r.Port] = append(byPort[r.Port], r)
	}
	servers := obj{}
	for _, port := range ports {
		routes := slices.Clone(byPort[port])
		// Caddy tries routes in order and takes the first that matches:
		// a route with a host before one without, a longer path first.
		slices.SortStableFunc(routes, func(a, b Route) int {
			if (a.Host == "") != (b.Host == "") {
				if a.Host == "" {
					return 1
				}
				return -1
			}
			if len(a.Path) != len(b.Path) {
				return len(b.Path) - len(a.Path)
			}
			return compareRoutes(a, b)
		})
		var list []any
		for _, r := range routes {
			list = append(list, routeMap(r))
		}
		// Plain HTTP from the edge, which set X-Forwarded-For and
		// -Proto (trusted: only the edge reaches the socket).
		servers["berth-"+strconv.Itoa(port)] = obj{
			"listen":               []any{"unix/" + PortSocket(o.Dir, port)},
			"routes":               list,
			"automatic_https":      obj{"disable": true},
			"trusted_proxies_unix": true,
		}
	}
	return obj{"apps": obj{"http": obj{"@id": marker + o.TLS + ":" + o.Dir, "servers": servers}}}, nil
}

// edgeMap is EdgeConfig's document.
func edgeMap(t Table, o Options) (obj, error) {
	switch o.TLS {
	case "", TLSOff, TLSInternal, TLSAuto:
	default:
		return nil, fmt.Errorf("ingress tls %q: want off, internal or auto", o.TLS)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(o.Dir, "/") {
		return nil, fmt.Errorf("ingress socket directory %q: want an absolute path", o.Dir)
	}
	tlsOn := o.tls() != TLSOff
	hosts := map[int][]string{}
	var ports []int
	for _, r := range t.Sorted() {
		if _, ok := hosts[r.Port]; !ok {
			ports = append(ports, r.Port)
			hosts[r.Port] = []string{}
		}
		if r.Host != "" && !slices.Contains(hosts[r.Port], r.Host) {
			hosts[r.Port] = append(hosts[r.Port], r.Host)
		}
	}
	servers := obj{}
	for _, port := range ports {
		handle := []any{obj{
			"handler":   "reverse_proxy",
			"upstreams": []any{obj{"dial": "unix/" + PortSocket(o.Dir, port)}},
			"load_balancing": obj{
				"try_duration": edgeTryDuration,
				"try_interval": edgeTryInterval,
			},
		}}
		var routes []any
		if tlsOn && len(hosts[port]) > 0 {
			// The hosts, for the certificates Caddy manages; any
			// other request still goes to the router, which answers it.
			hs := make([]any, len(hosts[port]))
			for i, h := range hosts[port] {
				hs[i] = h
			}
			routes = append(routes, obj{"match": []any{obj{"host": hs}}, "handle": handle, "terminal": true})
		}
		routes = append(routes, obj{"handle": handle, "terminal": true})
		srv := obj{
			"listen": []any{":" + strconv.Itoa(port)},
			"routes": routes,
		}
		if tlsOn {
			srv["tls_connection_policies"] = []any{obj{}}
			srv["automatic_https"] = obj{"disable_redirects": true}
		} else {
			srv["automatic_https"] = obj{"disable": true}
		}
		servers["berth-edge-"+strconv.Itoa(port)] = srv
	}
	apps := obj{"http": obj{"@id": edgeMarker + o.TLS + ":" + o.Dir, "servers": servers}}
	if o.tls() == TLSInternal {
		// Certificates from Caddy's local CA for any name asked (on
		// demand needs no permission module with the internal issuer),
		// also for routes without a host; the CA is not installed into
		// the container's trust store.
		apps["tls"] = obj{"automation": obj{"policies": []any{obj{
			"issuers":   []any{obj{"module": "internal"}},
			"on_demand": true,
		}}}}
		apps["pki"] = obj{"certificate_authorities": obj{"local": obj{"install_trust": false}}}
	}
	return obj{"apps": apps}, nil
}

func routeMap(r Route) obj {
	route := obj{"handle": []any{
		obj{"handler": "vars", serviceVar: r.Service},
		upstreamsHandler(r.Upstreams),
	}, "terminal": true}
	match := obj{}
	if r.Host != "" {
		match["host"] = []any{r.Host}
	}
	if r.Path != "" {
		match["path"] = pathPatterns(r.Path)
	}
	if len(match) > 0 {
		route["match"] = []any{match}
	}
	return route
}

// pathPatterns matches the prefix p: "/api" takes /api and /api/..., not
// /apix; "/api/" takes /api/... .
func pathPatterns(p string) []any {
	if strings.HasSuffix(p, "/") {
		return []any{p + "*"}
	}
	return []any{p, p + "/*"}
}

// upstreamsHandler is a reverse_proxy over ups, or a 503 when there are
// none (a service with no running replica).
func upstreamsHandler(ups []string) obj {
	if len(ups) == 0 {
		return obj{"handler": "static_response", "status_code": 503, "body": "no upstream\n"}
	}
	var list []any
	for _, u := range ups {
		list = append(list, obj{"dial": u})
	}
	return obj{
		"handler":   "reverse_proxy",
		"upstreams": list,
		"load_balancing": obj{
			"selection_policy": obj{"policy": "round_robin"},
			"try_duration":     tryDuration,
			"try_interval":     tryInterval,
		},
		"health_checks": obj{"passive": obj{
			"fail_duration": failDuration,
			"max_fails":     maxFails,
		}},
	}
}

// parsed is what a configuration read back says, before checking that
// berth wrote it.
type parsed struct {
	table Table
	opts  Options
}

// parseConfig rebuilds the table and options from a
// configuration read back from Caddy. ok is false when the configuration is
// not exactly one config would write (none loaded, written by someone
// else, or changed by hand).
func parseConfig(raw []byte) (p parsed, ok bool) {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return p, false
	}
	var c struct {
		Apps struct {
			HTTP struct {
				ID      string `json:"@id"`
				Servers map[string]struct {
					Listen []string `json:"listen"`
					Routes []struct {
						Match []struct {
							Host []string `json:"host"`
							Path []string `json:"path"`
						} `json:"match"`
						Handle []map[string]any `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return p, false
	}
	tls, found := strings.CutPrefix(c.Apps.HTTP.ID, marker)
	if !found {
		return p, false
	}
	tls, dir, found := strings.Cut(tls, ":")
	if !found {
		return p, false
	}
	p.opts = Options{TLS: tls, Dir: dir}
	for name, s := range c.Apps.HTTP.Servers {
		port, err := strconv.Atoi(strings.TrimPrefix(name, "berth-"))
		if err != nil {
			return p, false
		}
		for _, rt := range s.Routes {
			if len(rt.Handle) != 2 {
				return p, false
			}
			svc, _ := rt.Handle[0][serviceVar].(string)
			r := Route{Service: svc, Port: port, Upstreams: dials(rt.Handle[1])}
			if len(rt.Match) == 1 {
				if len(rt.Match[0].Host) == 1 {
					r.Host = rt.Match[0].Host[0]
				}
				switch paths := rt.Match[0].Path; len(paths) {
				case 1:
					r.Path = strings.TrimSuffix(paths[0], "*")
				case 2:
					r.Path = paths[0]
				}
			}
			p.table = append(p.table, r)
		}
	}
	p.table = p.table.Sorted()
	// Exact: what berth would write for what was read is what was read.
	again, err := configMap(p.table, p.opts)
	if err != nil || !sameDoc(again, doc) {
		return p, false
	}
	return p, true
}

// sameDoc reports whether m, as JSON, is doc (a decoded JSON document).
func sameDoc(m obj, doc any) bool {
	b, err := json.Marshal(m)
	if err != nil {
		return false
	}
	var want any
	if json.Unmarshal(b, &want) != nil {
		return false
	}
	return reflect.DeepEqual(want, doc)
}

// edgeServes reports whether raw, an edge's configuration read back, is
// exactly what EdgeConfig writes for t and o.
func edgeServes(raw []byte, t Table, o Options) bool {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return false
	}
	m, err := edgeMap(t, o)
	return err == nil && sameDoc(m, doc)
}

func dials(h map[string]any) []string {
	list, _ := h["upstreams"].([]any)
	out := []string{}
	for _, u := range list {
		if m, ok := u.(map[string]any); ok {
			if d, ok := m["dial"].(string); ok {
				out = append(out, d)
			}
		}
	}
	return out
}
