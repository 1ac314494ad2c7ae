package executor

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
