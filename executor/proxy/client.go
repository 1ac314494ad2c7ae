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
// on (Caddy's grace period is left eternal), and Upstreams goes on counting
// them, also for upstreams t no longer has: Drain them.
func (c *Client) Load(ctx context.Context, t Table, o Options) error {
	b, err := Config(t, o)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, "/load", b)
	return err
}

// LoadEdge replaces an edge proxy's configuration with the one for t and
// o (EdgeConfig). Caddy skips a load equal to what it runs, so an edge
// whose ports, hosts and TLS are unchanged is not reloaded.
func (c *Client) LoadEdge(ctx context.Context, t Table, o Options) error {
	b, err := EdgeConfig(t, o)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, "/load", b)
	return err
}

// EdgeServes reports whether an edge proxy runs exactly the configuration
// EdgeConfig writes for t and o.
func (c *Client) EdgeServes(ctx context.Context, t Table, o Options) (bool, error) {
	raw, err := c.do(ctx, http.MethodGet, "/config/", nil)
	if err != nil {
		return false, err
	}
	return edgeServes(raw, t, o), nil
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
// /reverse_proxy/upstreams), sorted by address: those of the loaded
// configuration, and those a reload removed while they still have requests
// in flight (Caddy 2.11 counts in-flight requests by address across
// reloads).
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
	var busy []string
	stopped := func() error {
		return fmt.Errorf("drain: %s still in flight: %w", strings.Join(busy, ", "), context.Cause(ctx))
	}
	for {
		ups, err := c.Upstreams(ctx)
		if err != nil {
			if busy != nil && ctx.Err() != nil {
				return stopped()
			}
			return err
		}
		busy = busy[:0]
		for _, u := range ups {
			if want[u.Address] && u.Requests > 0 {
				busy = append(busy, fmt.Sprintf("%s (%d)", u.Address, u.Requests))
			}
		}
		if len(busy) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return stopped()
		case <-time.After(poll):
		}
	}
}
