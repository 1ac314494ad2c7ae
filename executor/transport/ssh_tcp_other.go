//go:build !linux

package transport

import "net"

// tuneTCP sets TCP_NODELAY; TCP_QUICKACK exists on Linux only.
func tuneTCP(c net.Conn, quickAck, everyRead bool) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return c
}
