package transport

import (
	"io"
	"net"
	"sync"
)

// withDeadlines gives a connection without deadline support (an SSH
// channel) working deadlines, by relaying it through a net.Pipe: health
// probes and HTTP clients set deadlines and must not get an error for it.
func withDeadlines(c net.Conn, addr string) net.Conn {
	local, remote := net.Pipe()
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			c.Close()
			remote.Close()
		})
	}
	go func() {
		io.Copy(remote, c)
		closeBoth()
	}()
	go func() {
		io.Copy(c, remote)
		closeBoth()
	}()
	return &addrConn{Conn: local, remote: channelAddr(addr)}
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

type channelAddr string

func (a channelAddr) Network() string { return "ssh-direct-tcpip" }
func (a channelAddr) String() string  { return string(a) }

// closeUnblocksWrites makes Close of an SSH channel return a Write that is
// waiting for the channel's window. Without it a request whose body the
// node's socket stops reading (a wedged engine during an image load) could
// never end: sshd drains what it holds before it confirms a close, the
// window never grows, and net/http waits for the body's writer before a
// cancelled request returns. The write itself goes on in a goroutine of
// its own, on a copy of the bytes, until the SSH connection is closed or
// the channel closes; after the close nothing more is sent.
func closeUnblocksWrites(c net.Conn) net.Conn {
	return &unblockConn{Conn: c, closed: make(chan struct{})}
}

type unblockConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

type writeResult struct {
	n   int
	err error
}

func (c *unblockConn) Write(b []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	buf := append([]byte(nil), b...)
	done := make(chan writeResult, 1)
	go func() {
		n, err := c.Conn.Write(buf)
		done <- writeResult{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *unblockConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		close(c.closed)
		err = c.Conn.Close()
	})
	return err
}

// CloseWrite sends EOF on the channel (the Docker exec stream's end of
// stdin) and keeps reading.
func (c *unblockConn) CloseWrite() error {
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
