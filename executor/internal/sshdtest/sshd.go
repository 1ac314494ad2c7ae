// Package sshdtest runs a throwaway OpenSSH server on 127.0.0.1 for the
// executor packages' unit tests (transport, engine and the core's Open over
// SSH). Only tests import it; it is not part of the berth binary.
package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/berth-dev/berth/config"
)

// SSHD is a throwaway OpenSSH server on 127.0.0.1 for unit tests: root
// login with a fresh client key, forwarding to the host's Docker socket
// allowed. It needs root and /usr/sbin/sshd; tests skip without them.
type SSHD struct {
	t       testing.TB
	Dir     string
	Port    int
	CfgPath string
	Cmd     *exec.Cmd
	HostKey ssh.PublicKey
	// ClientKey is an unencrypted ed25519 key authorised for root.
	ClientKey  string
	ClientPriv ed25519.PrivateKey
	KnownHosts string // holds the host key
	Home       string // an empty home directory for the client's HomeDir
	Log        *bytes.Buffer
}

// WriteKey writes priv to path in OpenSSH format (encrypted with
// passphrase unless it is empty) and returns its public key.
func WriteKey(t testing.TB, path string, priv ed25519.PrivateKey, passphrase string) ssh.PublicKey {
	t.Helper()
	var blk *pem.Block
	var err error
	if passphrase == "" {
		blk, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// NewEd25519 returns a fresh ed25519 key.
func NewEd25519(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts sshd with extra sshd_config lines.
func Start(t testing.TB, extra ...string) *SSHD {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a throwaway sshd")
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("no /usr/sbin/sshd (apt-get install openssh-server)")
	}
	os.MkdirAll("/run/sshd", 0o755)
	dir := t.TempDir()
	s := &SSHD{t: t, Dir: dir, Home: filepath.Join(dir, "home"), Log: &bytes.Buffer{}}
	os.MkdirAll(s.Home, 0o700)
	hostPriv := NewEd25519(t)
	s.HostKey = WriteKey(t, filepath.Join(dir, "hostkey"), hostPriv, "")
	s.ClientPriv = NewEd25519(t)
	s.ClientKey = filepath.Join(dir, "id_ed25519")
	cpub := WriteKey(t, s.ClientKey, s.ClientPriv, "")
	s.Authorize(cpub)
	s.Port = FreePort(t)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	os.WriteFile(s.KnownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey)+"\n"), 0o600)
	s.Start(extra...)
	return s
}

// Addr is sshd's host:port.
func (s *SSHD) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Authorize lets pub log in as root.
func (s *SSHD) Authorize(pub ssh.PublicKey) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	f.Write(ssh.MarshalAuthorizedKey(pub))
	f.Close()
}

// Start (re)starts sshd on its port with extra sshd_config lines.
func (s *SSHD) Start(extra ...string) {
	t := s.t
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/hostkey
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
LogLevel VERBOSE
%s
`, s.Port, s.Dir, s.Dir, s.Dir, strings.Join(extra, "\n"))
	s.CfgPath = filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(s.CfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", s.CfgPath)
	s.Cmd.Stderr = s.Log
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := s.Cmd
	t.Cleanup(func() { s.kill(cmd) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not start: %v\n%s", err, s.Log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends sshd and its sessions (its process group).
func (s *SSHD) kill(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}

// Stop kills sshd and its sessions.
func (s *SSHD) Stop() { s.kill(s.Cmd); s.Cmd = nil }

// Freeze stops sshd and every process under it (each connection runs in
// its own session) without closing their sockets: the node goes silent.
func (s *SSHD) Freeze() { s.signalTree(syscall.SIGSTOP) }
func (s *SSHD) Thaw()   { s.signalTree(syscall.SIGCONT) }

func (s *SSHD) signalTree(sig syscall.Signal) {
	for _, pid := range descendants(s.Cmd.Process.Pid) {
		syscall.Kill(pid, sig)
	}
}

// descendants returns pid and every process below it.
func descendants(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[p] = pp
		}
	}
	out := []int{pid}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if slices.Contains(out, pp) && !slices.Contains(out, p) {
				out = append(out, p)
				changed = true
			}
		}
	}
	return out
}

// Mark returns a position in sshd's log for since.
func (s *SSHD) Mark() int { return s.Log.Len() }

// Since returns sshd's log after mark.
func (s *SSHD) Since(mark int) string { return s.Log.String()[mark:] }

// Node is a config node for this sshd using the client key.
func (s *SSHD) Node(name string) *config.Node {
	return &config.Node{
		Name:         name,
		Address:      "127.0.0.1",
		Port:         s.Port,
		User:         "root",
		IdentityFile: s.ClientKey,
		KnownHosts:   s.KnownHosts,
		DockerSocket: "/var/run/docker.sock",
	}
}

// Config is a configuration of project over nodes.
func Config(project string, nodes ...*config.Node) *config.Config {
	return &config.Config{Project: config.Project{Name: project}, Nodes: nodes}
}

// HaveDocker skips the test without a Docker engine at the default socket.
func HaveDocker(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/var/run/docker.sock"); err != nil {
		t.Skip("no Docker engine at /var/run/docker.sock")
	}
}
