package transport

import (
	"io"
	"time"
)

// Defaults for Options; see there.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepAlive      = 2 * time.Second
	DefaultKeepAliveMax   = 3
)

// Options tune how the SSH connections are made and kept. The zero value
// means the defaults.
type Options struct {
	// TrustNewHosts accepts the host key of a host not in known_hosts and
	// records it there (-trust-new-hosts). A changed key is never accepted.
	TrustNewHosts bool
	// ConnectTimeout bounds the TCP connect and the SSH handshake of each
	// hop. Default 10 s.
	ConnectTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com probes on each
	// connection; when one is not answered within KeepAlive*KeepAliveMax
	// the connection is closed and everything in flight fails. Defaults
	// 2 s and 3: a node that goes silent is reported within about 8 s.
	// A negative KeepAlive disables the probes.
	KeepAlive    time.Duration
	KeepAliveMax int
	// SSHConfigPath is the OpenSSH client configuration to honour
	// (default HomeDir/.ssh/config).
	SSHConfigPath string
	// HomeDir replaces the user's home directory (~ in paths, ~/.ssh).
	// Default: HOME from Environ, else the process's home.
	HomeDir string
	// Environ replaces the process environment (SSH_AUTH_SOCK, USER, and
	// for the callers DOCKER_HOST), os.Environ()-style.
	Environ []string
	// Stdin, Stderr and IsTerminal are where a passphrase is asked for:
	// on Stdin when IsTerminal, else on /dev/tty when there is one (unless
	// NoTTY), else the key fails with a message to use ssh-agent. Stderr
	// also gets a warning for each host key recorded by TrustNewHosts.
	Stdin      io.Reader
	Stderr     io.Writer
	IsTerminal bool
	NoTTY      bool
	// NoQuickAck leaves TCP_QUICKACK off, and QuickAckOnce sets it once
	// rather than after every read (both for measurements).
	NoQuickAck   bool
	QuickAckOnce bool
}

// WithDefaults returns o with every unset field given its default.
func (o Options) WithDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.KeepAliveMax <= 0 {
		o.KeepAliveMax = DefaultKeepAliveMax
	}
	return o
}
