package transport

import (
	"net"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// tuneTCP sets TCP_NODELAY and, when quickAck, wraps the connection so
// that TCP_QUICKACK is set again after every read (only once without
// everyRead, for a benchmark).
//
// Why: sshd writes a response in several segments and Nagle holds the last
// one until our ACK arrives, while Linux delays that ACK by up to 40 ms.
// Every Docker API call over a fresh channel then stalls ~40 ms. Linux
// clears TCP_QUICKACK after it sends ACKs in delayed mode again, so setting
// it once is not enough: it is set after each read. Measured on loopback:
// an API call over a new direct-streamlocal channel takes ~44 ms without it
// and ~2.4 ms with it (see BenchmarkLocalSSHDAPICall, and the api-call cases
// of BenchmarkCluster against the test cluster).
func tuneTCP(c net.Conn, quickAck, everyRead bool) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	tc.SetNoDelay(true)
	if !quickAck {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: tc, raw: raw, everyRead: everyRead}
	q.set()
	return q
}

type quickAckConn struct {
	*net.TCPConn
	raw       syscall.RawConn
	everyRead bool
	sets      atomic.Int64 // successful setsockopt(TCP_QUICKACK) calls, for tests
}

func (c *quickAckConn) set() {
	c.raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) == nil {
			c.sets.Add(1)
		}
	})
}

func (c *quickAckConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	if c.everyRead {
		c.set()
	}
	return n, err
}
