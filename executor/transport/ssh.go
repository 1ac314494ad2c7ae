package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/berth-dev/berth/executor/internal/msg"
	"github.com/berth-dev/berth/internal/trace"
)

// Pool holds the run's SSH connections: one per host, shared when a node
// is also another node's bastion.
type Pool struct {
	opts   Options
	keys   *keyStore
	writer *knownHostsWriter

	mu    sync.Mutex
	conns map[string]*poolEntry
}

type poolEntry struct {
	ready chan struct{}
	conn  *Conn
	err   error
}

// NewPool returns an empty pool whose connections are made with opts
// (defaults filled in). Close it when the run ends.
func NewPool(opts Options) *Pool {
	opts = opts.WithDefaults()
	return &Pool{opts: opts, keys: newKeyStore(opts), writer: &knownHostsWriter{}, conns: map[string]*poolEntry{}}
}

// Get returns the connection to t, dialling it once for all callers (and
// its jump hosts first). Each successful Get takes a reference that
// Conn.Release gives back.
func (p *Pool) Get(ctx context.Context, t *Target) (*Conn, error) {
	key := t.key()
	p.mu.Lock()
	e, ok := p.conns[key]
	if !ok {
		e = &poolEntry{ready: make(chan struct{})}
		p.conns[key] = e
		p.mu.Unlock()
		e.conn, e.err = p.dial(ctx, t)
		if e.err == nil {
			e.conn.pool, e.conn.key = p, key
		}
		close(e.ready)
		p.mu.Lock()
		if e.err != nil {
			delete(p.conns, key)
		}
	}
	p.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.err != nil {
		return nil, e.err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.conn.refs < 0 {
		return nil, errors.New("connection closed")
	}
	e.conn.refs++
	return e.conn, nil
}

func (p *Pool) release(c *Conn) {
	p.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		c.refs = -1
		if p.conns[c.key] != nil && p.conns[c.key].conn == c {
			delete(p.conns, c.key)
		}
	}
	p.mu.Unlock()
	if last {
		c.close(errors.New("connection closed"))
	}
}

// Close closes every connection left.
func (p *Pool) Close() {
	p.mu.Lock()
	var cs []*Conn
	for k, e := range p.conns {
		select {
		case <-e.ready:
			if e.conn != nil {
				e.conn.refs = -1
				cs = append(cs, e.conn)
			}
		default:
		}
		delete(p.conns, k)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.close(errors.New("connection closed"))
	}
}

// Conns returns the pool's open connections, for tests and diagnostics.
func (p *Pool) Conns() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var cs []*Conn
	for _, e := range p.conns {
		select {
		case <-e.ready:
			if e.conn != nil {
				cs = append(cs, e.conn)
			}
		default:
		}
	}
	return cs
}

// Conn is one SSH connection with its keep-alive.
type Conn struct {
	client *ssh.Client
	raw    net.Conn // the TCP connection as tuned by tuneTCP; nil through a jump host
	target *Target
	via    *Conn // the bastion's connection, released on close
	pool   *Pool
	key    string
	refs   int // guarded by pool.mu

	once   sync.Once
	mu     sync.Mutex
	broken error // why the connection ended
	done   chan struct{}
}

// failure returns why the connection broke, or nil while it is up.
func (c *Conn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// close ends the connection once; reason is what later calls report.
func (c *Conn) close(reason error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.broken = reason
		c.mu.Unlock()
		close(c.done)
		c.client.Close()
		if c.via != nil && c.pool != nil {
			c.pool.release(c.via)
		}
	})
}

// keepAlive sends keepalive@openssh.com every interval; when one gets no
// answer within interval*max the connection is closed, so every request in
// flight fails at once instead of hanging. A node that goes silent is thus
// reported within about interval*(max+1) (8 s by default).
func (c *Conn) keepAlive(interval time.Duration, max int) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		bound := interval * time.Duration(max)
		timer := time.NewTimer(bound)
		select {
		case err := <-replied:
			timer.Stop()
			if err != nil {
				c.close(fmt.Errorf("connection to %s lost: %s", c.target.addr(), msg.OneLine(err.Error())))
				return
			}
		case <-timer.C:
			c.close(fmt.Errorf("connection to %s lost: no answer to keep-alive for %s", c.target.addr(), bound))
			return
		case <-c.done:
			timer.Stop()
			return
		}
	}
}

// dial connects to t (through its bastion if any), verifies the host key
// and authenticates. A connection the server closes before its host key was
// even offered (sshd's MaxStartups drops excess unauthenticated connections
// at random) is tried again, twice, after a short pause: nothing was sent.
func (p *Pool) dial(ctx context.Context, t *Target) (*Conn, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt*attempt) * 100 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var c *Conn
		c, err = p.dialOnce(ctx, t)
		var re *retryableError
		if !errors.As(err, &re) {
			return c, err
		}
		err = re.err
	}
	return nil, err
}

// retryableError is a handshake closed by the server before the host key.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }

func (p *Pool) dialOnce(ctx context.Context, t *Target) (*Conn, error) {
	timeout := p.opts.ConnectTimeout
	endKH := trace.Spanf("open %s: read known_hosts", t.label)
	verifier, err := newHostKeyVerifier(t, p.opts.TrustNewHosts, p.writer.append)
	endKH()
	if err != nil {
		return nil, err
	}
	endKey := trace.Spanf("open %s: load identity", t.label)
	auth, err := p.keys.authFor(t)
	endKey()
	if err != nil {
		return nil, err
	}
	defer auth.close()

	var raw net.Conn
	var via *Conn
	if t.via != nil {
		via, err = p.Get(ctx, t.via)
		if err != nil {
			return nil, fmt.Errorf("jump host %s: %w", t.via.label, err)
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		raw, err = via.client.DialContext(dctx, "tcp", t.addr())
		cancel()
		if err != nil {
			if b := via.failure(); b != nil {
				err = b
			} else if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("no answer within %s", timeout)
			}
			p.release(via)
			var oce *ssh.OpenChannelError
			if errors.As(err, &oce) {
				err = errors.New(strings.ToLower(oce.Message))
			}
			return nil, fmt.Errorf("connect to %s through jump host %s: %s", t.addr(), t.via.label, msg.OneLine(err.Error()))
		}
	} else {
		d := net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
		endTCP := trace.Spanf("open %s: TCP connect", t.label)
		raw, err = d.DialContext(ctx, "tcp", t.addr())
		endTCP()
		if err != nil {
			return nil, dialError(t, timeout, err)
		}
		raw = tuneTCP(raw, !p.opts.NoQuickAck, !p.opts.QuickAckOnce)
	}

	// The handshake gets the connect timeout too; a channel to a jump
	// target has no deadlines, so a timer closes the connection instead.
	var timedOut bool
	var tmu sync.Mutex
	stopTimer := time.AfterFunc(timeout, func() {
		tmu.Lock()
		timedOut = true
		tmu.Unlock()
		raw.Close()
	})
	stopCtx := context.AfterFunc(ctx, func() { raw.Close() })
	cfg := &ssh.ClientConfig{
		User:              t.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(auth.signers...)},
		HostKeyCallback:   verifier.callback,
		HostKeyAlgorithms: verifier.algorithms,
		ClientVersion:     "SSH-2.0-berth",
		Timeout:           timeout,
	}
	endHS := trace.Spanf("open %s: SSH handshake and auth", t.label)
	cc, chans, reqs, err := ssh.NewClientConn(raw, t.addr(), cfg)
	endHS()
	stopTimer.Stop()
	stopCtx()
	if err != nil {
		raw.Close()
		if via != nil {
			p.release(via)
		}
		tmu.Lock()
		to := timedOut
		tmu.Unlock()
		switch {
		case verifier.failure() != nil:
			return nil, verifier.failure()
		case auth.failure() != nil:
			return nil, auth.failure()
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case to:
			return nil, fmt.Errorf("ssh handshake with %s: no answer within %s", t.addr(), timeout)
		case bytes.Contains([]byte(err.Error()), []byte("unable to authenticate")):
			return nil, authError(t, auth)
		case isEOFLike(err) && !verifier.wasCalled():
			return nil, &retryableError{fmt.Errorf("ssh handshake with %s: connection closed by the server before key exchange (sshd refused it: MaxStartups, or not an SSH server)", t.addr())}
		case isEOFLike(err):
			return nil, fmt.Errorf("ssh handshake with %s: connection closed by the server (sshd refused it)", t.addr())
		}
		return nil, fmt.Errorf("ssh handshake with %s: %s", t.addr(), msg.OneLine(err.Error()))
	}
	if verifier.recorded != "" && p.opts.Stderr != nil {
		fmt.Fprintf(p.opts.Stderr, "Warning: %s: recorded the new host key of %s in %s\n", t.label, t.addr(), verifier.recorded)
	}
	c := &Conn{client: ssh.NewClient(cc, chans, reqs), target: t, via: via, done: make(chan struct{})}
	if via == nil {
		c.raw = raw
	}
	go c.keepAlive(p.opts.KeepAlive, p.opts.KeepAliveMax)
	go func() {
		// The server or the network ended the connection.
		err := c.client.Wait()
		why := "connection closed"
		if err != nil {
			why = msg.OneLine(err.Error())
		}
		c.close(fmt.Errorf("connection to %s lost: %s", t.addr(), why))
	}()
	return c, nil
}

func dialError(t *Target, timeout time.Duration, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connect to %s: connection refused (is sshd running there?)", t.addr())
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("connect to %s: no answer within %s", t.addr(), timeout)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return fmt.Errorf("connect to %s: %s", t.addr(), se.Err)
		}
		return fmt.Errorf("connect to %s: %s", t.addr(), msg.OneLine(oe.Err.Error()))
	}
	return fmt.Errorf("connect to %s: %s", t.addr(), msg.OneLine(err.Error()))
}

// run runs cmd in one exec session and returns its standard output.
func (c *Conn) run(ctx context.Context, cmd string) ([]byte, error) {
	type result struct {
		out []byte
		err error
	}
	ch := make(chan result, 1)
	var mu sync.Mutex
	var sess *ssh.Session
	go func() {
		s, err := c.client.NewSession()
		if err != nil {
			ch <- result{nil, fmt.Errorf("open session: %w", err)}
			return
		}
		mu.Lock()
		sess = s
		mu.Unlock()
		defer s.Close()
		var out, stderr bytes.Buffer
		s.Stdout, s.Stderr = &out, &stderr
		if err := s.Run(cmd); err != nil {
			if stderr.Len() > 0 {
				err = fmt.Errorf("%w: %s", err, msg.OneLine(stderr.String()))
			}
			ch <- result{out.Bytes(), err}
			return
		}
		ch <- result{out.Bytes(), nil}
	}()
	select {
	case r := <-ch:
		return r.out, r.err
	case <-ctx.Done():
		mu.Lock()
		if sess != nil {
			sess.Close()
		}
		mu.Unlock()
		return nil, ctx.Err()
	}
}

// Label names the host in errors: a node's name, or "jump host X".
func (c *Conn) Label() string { return c.target.label }

// Failure is why the connection broke (a keep-alive not answered), or nil
// while it works: errors of calls over it are reported with this reason
// rather than a bare EOF.
func (c *Conn) Failure() error { return c.failure() }

// Run runs cmd in an exec session and returns its output. A command that ran
// and failed returns its output and an error for which IsExitError holds.
func (c *Conn) Run(ctx context.Context, cmd string) ([]byte, error) { return c.run(ctx, cmd) }

// IsExitError reports whether err (from Run) says the command ran and exited
// with a failure status, rather than the session failing.
func IsExitError(err error) bool {
	var ee *ssh.ExitError
	return errors.As(err, &ee)
}

// DialSocket opens a direct-streamlocal channel to the unix socket at path on
// the host (the Docker engine's API). Closing it unblocks a pending write.
func (c *Conn) DialSocket(ctx context.Context, path string) (net.Conn, error) {
	if b := c.failure(); b != nil {
		return nil, b
	}
	ch, err := c.client.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return closeUnblocksWrites(ch), nil
}

// DialTCP opens a direct-tcpip channel to addr as seen from the host, with
// working deadlines.
func (c *Conn) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	ch, err := c.client.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return withDeadlines(ch, addr), nil
}

// Release gives back the reference Pool.Get took; the connection closes
// when its last user releases it. Call it once per Get.
func (c *Conn) Release() { c.pool.release(c) }
