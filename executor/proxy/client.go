package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Upstream is one upstream as the proxy sees it: its in-flight requests and
// its recent failures (passive health checks).
type Upstream struct {
	Address  string
	Requests int
	Fails    int
}

// Client talks to one Caddy's admin API.
type Client struct {
	hc *http.Client
}

// adminHost is the Host header of admin requests. Over a unix socket Caddy
// (2.11) checks no Host; earlier versions accept only "", 127.0.0.1 or ::1
// there, and Go cannot send an empty Host, so 127.0.0.1. No Origin header
// is sent: Caddy checks it only with enforce_origin.
const adminHost = "127.0.0.1"

// New returns a Client whose every connection comes from dial (the admin
// socket: Node.DialUnix, or a plain unix dial).
func New(dial func(ctx context.Context) (net.Conn, error)) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx)
		},
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &Client{hc: &http.Client{Transport: tr}}
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+adminHost+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("caddy admin %s %s: %w", method, path, unwrapURL(err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("caddy admin %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(out))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, fmt.Errorf("caddy admin %s %s: %s: %s", method, path, resp.Status, msg)
	}
	return out, nil
}

// unwrapURL drops net/http's "Get \"http://127.0.0.1/...\":" prefix, which
// names an address that is not where the request went.
func unwrapURL(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && strings.Contains(err.Error(), adminHost) {
		if inner := u.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// Load replaces the proxy's whole configuration with the one for t and o
// (POST /load). Requests in flight finish on the configuration they started
// on. Upstreams that t drops stay known to Caddy, in a route no request
// matches, until a later Load finds them idle: so Drain sees their in-flight
// requests (Caddy forgets an upstream's count once no configuration names
// it).
func (c *Client) Load(ctx context.Context, t Table, o Options) error {
	if _, err := configMap(t, o, nil); err != nil {
		return err
	}
	held, err := c.held(ctx, t)
	if err != nil {
		return err
	}
	b, err := config(t, o, held)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, "/load", b)
	return err
}

// held is the upstreams the next configuration keeps without routing to
// them: those the loaded one routes to and t does not (they may have
// requests in flight), and those it already holds that still have some.
func (c *Client) held(ctx context.Context, t Table) ([]string, error) {
	raw, err := c.do(ctx, http.MethodGet, "/config/", nil)
	if err != nil {
		return nil, err
	}
	p, ok := parseConfig(raw)
	if !ok {
		return nil, nil
	}
	keep := map[string]bool{}
	for _, r := range t {
		for _, u := range r.Upstreams {
			keep[u] = true
		}
	}
	set := map[string]bool{}
	for _, r := range p.table {
		for _, u := range r.Upstreams {
			if !keep[u] {
				set[u] = true
			}
		}
	}
	if len(p.held) > 0 {
		ups, err := c.Upstreams(ctx)
		if err != nil {
			return nil, err
		}
		busy := map[string]bool{}
		for _, u := range ups {
			if u.Requests > 0 {
				busy[u.Address] = true
			}
		}
		for _, u := range p.held {
			if !keep[u] && busy[u] {
				set[u] = true
			}
		}
	}
	var out []string
	for u := range set {
		out = append(out, u)
	}
	slices.Sort(out)
	return out, nil
}

// Table reads the loaded configuration back (GET /config/). ok is false
// when there is none, or it is not exactly one berth writes (then t and o
// are empty): the proxy must be loaded before it serves berth's routes.
func (c *Client) Table(ctx context.Context) (t Table, o Options, ok bool, err error) {
	raw, err := c.do(ctx, http.MethodGet, "/config/", nil)
	if err != nil {
		return nil, Options{}, false, err
	}
	p, ok := parseConfig(raw)
	if !ok {
		return nil, Options{}, false, nil
	}
	return p.table, p.opts, true, nil
}

// Upstreams reports every upstream the proxy knows (GET
// /reverse_proxy/upstreams), sorted by address.
func (c *Client) Upstreams(ctx context.Context) ([]Upstream, error) {
	raw, err := c.do(ctx, http.MethodGet, "/reverse_proxy/upstreams", nil)
	if err != nil {
		return nil, err
	}
	var list []struct {
		Address     string `json:"address"`
		NumRequests int    `json:"num_requests"`
		Fails       int    `json:"fails"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("caddy admin GET /reverse_proxy/upstreams: %w", err)
	}
	out := make([]Upstream, 0, len(list))
	for _, u := range list {
		out = append(out, Upstream{Address: u.Address, Requests: u.NumRequests, Fails: u.Fails})
	}
	slices.SortFunc(out, func(a, b Upstream) int { return strings.Compare(a.Address, b.Address) })
	return out, nil
}

// Drain returns once none of addrs has a request in flight through the
// proxy, asking every poll; or ctx's error, naming the upstreams still
// busy. Call it after a Load that removed addrs: no new request reaches
// them then.
func (c *Client) Drain(ctx context.Context, addrs []string, poll time.Duration) error {
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	for {
		ups, err := c.Upstreams(ctx)
		if err != nil {
			return err
		}
		var busy []string
		for _, u := range ups {
			if want[u.Address] && u.Requests > 0 {
				busy = append(busy, fmt.Sprintf("%s (%d in flight)", u.Address, u.Requests))
			}
		}
		if len(busy) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %s: %w", strings.Join(busy, ", "), context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}
