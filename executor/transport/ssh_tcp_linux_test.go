package transport

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/executor/internal/sshdtest"
)

// berth's SSH connection is the TCP_QUICKACK wrapper, which sets the option
// again after every read (Linux clears it); with NoQuickAck it is the plain
// TCP connection. The calls are Docker API pings over the connection's
// engine channels, as a node makes them.
func TestSSHQuickAck(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	ctx := context.Background()
	open := func(t *testing.T, noQuickAck bool) (*Conn, func() error) {
		opts := Options{
			HomeDir:       s.Home,
			SSHConfigPath: filepath.Join(s.Home, "no-ssh-config"),
			Environ:       []string{"USER=root"},
			NoTTY:         true,
			NoQuickAck:    noQuickAck,
		}
		r, err := NewResolver(sshdtest.Config("p", s.Node("n1")), opts)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := r.Node(s.Node("n1"))
		if err != nil {
			t.Fatal(err)
		}
		p := NewPool(opts)
		t.Cleanup(p.Close)
		c, err := p.Get(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return c.DialSocket(ctx, "/var/run/docker.sock")
			},
		}}
		t.Cleanup(client.CloseIdleConnections)
		ping := func() error {
			resp, err := client.Get("http://docker/_ping")
			if err != nil {
				return err
			}
			return resp.Body.Close()
		}
		return c, ping
	}
	t.Run("re-armed-after-reads", func(t *testing.T) {
		c, ping := open(t, false)
		q, ok := c.raw.(*quickAckConn)
		if !ok {
			t.Fatalf("the SSH connection is a %T, not the TCP_QUICKACK wrapper", c.raw)
		}
		const calls = 20
		before := q.sets.Load()
		if before < 1 {
			t.Errorf("TCP_QUICKACK was never set on the new connection")
		}
		for i := 0; i < calls; i++ {
			// Each answer is read from the socket before the next call.
			if err := ping(); err != nil {
				t.Fatal(err)
			}
		}
		if got := q.sets.Load() - before; got < calls {
			t.Errorf("TCP_QUICKACK set %d times over %d API calls; want it re-armed after every read", got, calls)
		}
	})
	t.Run("NoQuickAck", func(t *testing.T) {
		c, _ := open(t, true)
		if _, ok := c.raw.(*net.TCPConn); !ok {
			t.Errorf("with NoQuickAck the SSH connection is a %T, want the plain *net.TCPConn", c.raw)
		}
	})
}

// tuneTCP on a loopback connection, without sshd: every read re-arms
// TCP_QUICKACK, and the kernel accepts the option.
func TestTuneTCPQuickAck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	c := tuneTCP(raw, true, true)
	q, ok := c.(*quickAckConn)
	if !ok {
		t.Fatalf("tuneTCP(quickAck) returned a %T", c)
	}
	if q.sets.Load() != 1 {
		t.Errorf("TCP_QUICKACK set %d times on a new connection, want 1", q.sets.Load())
	}
	b := make([]byte, 1)
	for i := 0; i < 5; i++ {
		peer.Write([]byte{byte(i)})
		if _, err := q.Read(b); err != nil {
			t.Fatal(err)
		}
	}
	if got := q.sets.Load(); got != 6 {
		t.Errorf("TCP_QUICKACK set %d times after 5 reads, want 6", got)
	}
	if c := tuneTCP(raw, false, true); c != raw {
		t.Errorf("tuneTCP without quickAck returned a %T, want the connection itself", c)
	}
}
