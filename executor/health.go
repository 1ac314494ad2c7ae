package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/planner"
)

// waitHealthy waits until a started container counts as started: healthy
// (by its http/tcp probe through the node's connection, or by Docker's own
// healthcheck for cmd, or simply running without a health block), and then
// still healthy and not restarting for the monitor period. It fails when the
// container exits, restarts, turns unhealthy, or is not healthy within the
// deadline.
func waitHealthy(ctx context.Context, n Node, id string, spec *planner.ContainerSpec, poll time.Duration, monitor bool) error {
	deadline := time.Duration(spec.Update.DeadlineMillis) * time.Millisecond
	if deadline <= 0 {
		deadline = 60 * time.Second
	}
	mon := time.Duration(spec.Update.MonitorMillis) * time.Millisecond
	if !monitor {
		mon = 0
	}
	h := spec.Health
	failures := 0
	var startPeriod time.Duration
	if h != nil {
		startPeriod = time.Duration(h.StartPeriodMillis) * time.Millisecond
	}
	// Poll fast for the first success; count a failed probe at most once
	// per health interval, as Docker does.
	interval := time.Second
	retries := 3
	if h != nil {
		if iv := time.Duration(h.IntervalMillis) * time.Millisecond; iv > 0 {
			interval = iv
		}
		if h.Retries > 0 {
			retries = h.Retries
		}
	}
	if poll > interval {
		poll = interval
	}
	var lastCounted time.Time
	countFailure := func(now time.Time) {
		if now.Sub(lastCounted) >= interval {
			failures++
			lastCounted = now
		}
	}
	start := time.Now()
	var healthySince time.Time
	restarts := -1
	var lastErr error
	backoff := firstPoll
	for {
		c, err := n.Inspect(ctx, id)
		if err != nil {
			return err
		}
		if restarts < 0 {
			restarts = c.RestartCount
		}
		switch {
		case c.State == "exited" || c.State == "dead":
			return fmt.Errorf("the container exited with code %d", c.ExitCode)
		case c.State == "restarting" || c.RestartCount > restarts:
			return fmt.Errorf("the container crashed and is being restarted (restart count %d)", c.RestartCount)
		}
		ok, perr := probe(ctx, n, c, h)
		if perr != nil {
			lastErr = perr
		}
		now := time.Now()
		switch {
		case ok:
			failures = 0
			if healthySince.IsZero() {
				healthySince = now
			}
			if now.Sub(healthySince) >= mon {
				return nil
			}
		case !healthySince.IsZero():
			// It was healthy: the monitor allows `retries` failed probes
			// in a row, as Docker's healthcheck does.
			countFailure(now)
			if failures >= retries || c.Health == "unhealthy" {
				return fmt.Errorf("unhealthy %s after it started: %v", now.Sub(healthySince).Round(time.Millisecond), describe(lastErr, c))
			}
		default:
			if h != nil && len(h.Cmd) > 0 && c.Health == "unhealthy" {
				return fmt.Errorf("Docker's healthcheck reports it unhealthy")
			}
			// Docker's rule: after the start period, `retries` failed
			// probes in a row make it unhealthy.
			if h != nil && len(h.Cmd) == 0 && now.Sub(start) >= startPeriod {
				countFailure(now)
				if failures >= retries {
					return fmt.Errorf("not healthy: %d probes in a row failed after the %s start period: %v", failures, startPeriod, describe(lastErr, c))
				}
			}
			if now.Sub(start) > deadline {
				return fmt.Errorf("not healthy after %s: %v", deadline, describe(lastErr, c))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(nextPoll(poll, &backoff, healthySince, mon, time.Now())):
		}
	}
}

// firstPoll is the first wait between probes of a replica that has not
// been healthy yet; it doubles up to the poll interval. A server
// usually listens within milliseconds of its container running: the first
// success is seen then, not a whole poll interval later.
const firstPoll = 10 * time.Millisecond

// nextPoll is the wait before the next inspection and probe: backoff
// (doubled for the time after) until the replica is first healthy; then
// the poll interval, cut short so that the monitor period's last check
// falls when it ends.
func nextPoll(poll time.Duration, backoff *time.Duration, healthySince time.Time, mon time.Duration, now time.Time) time.Duration {
	if healthySince.IsZero() {
		d := min(*backoff, poll)
		*backoff = min(2**backoff, poll)
		return d
	}
	if left := mon - now.Sub(healthySince); left > 0 && left < poll {
		return left
	}
	return poll
}

func describe(err error, c planner.Container) error {
	if err != nil {
		return err
	}
	if c.Health != "" {
		return fmt.Errorf("health status %s", c.Health)
	}
	return errors.New("no successful probe")
}

// probe checks one replica once. Without a health block, running is healthy.
func probe(ctx context.Context, n Node, c planner.Container, h *planner.HealthSpec) (bool, error) {
	if c.State != "running" {
		return false, fmt.Errorf("state %s", c.State)
	}
	if h == nil {
		return true, nil
	}
	if len(h.Cmd) > 0 {
		return c.Health == "healthy", nil
	}
	if c.IP == "" {
		return false, errors.New("the container has no IP address to probe")
	}
	timeout := time.Duration(h.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(c.IP, strconv.Itoa(h.Port))
	conn, err := n.DialContainer(pctx, addr)
	if err != nil {
		return false, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if h.TCP || h.HTTP == "" {
		return true, nil
	}
	if dl, ok := pctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+addr+h.HTTP, nil)
	req.Header.Set("User-Agent", "berth-health")
	req.Close = true
	if err := req.Write(conn); err != nil {
		return false, fmt.Errorf("GET %s: %w", h.HTTP, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", h.HTTP, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return false, fmt.Errorf("GET %s: %s", h.HTTP, resp.Status)
	}
	return true, nil
}
