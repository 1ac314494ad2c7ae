// Package transport owns berth's SSH connections to the nodes: resolving a
// node through ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump),
// authentication (ssh-agent, key files, passphrases asked once per file),
// host key checking against known_hosts (changed keys refused, new ones
// recorded only with TrustNewHosts), one pooled connection per host shared
// with the nodes that jump through it, keep-alive probes, and TCP_QUICKACK.
// A Conn offers what the engine needs: channels to a unix socket or a TCP
// address on the host, and one-shot commands.
//
// It knows nothing of Docker, of plans or of the executor's Session: it must
// not import the executor or engine packages. Its Options are the SSH half of
// executor.Options; it reads the process environment only when
// Options.Environ is nil (SSH_AUTH_SOCK, USER, HOME).
package transport
