package executor

import (
	"bytes"
	"context"
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

// testSSHD is a throwaway OpenSSH server on 127.0.0.1 for unit tests: root
// login with a fresh client key, forwarding to the host's Docker socket
// allowed. It needs root and /usr/sbin/sshd; tests skip without them.
type testSSHD struct {
	t       testing.TB
	dir     string
	port    int
	cfgPath string
	cmd     *exec.Cmd
	hostKey ssh.PublicKey
	// clientKey is an unencrypted ed25519 key authorised for root.
	clientKey  string
	clientPriv ed25519.PrivateKey
	knownHosts string // holds the host key
	home       string // an empty home directory for Options.HomeDir
	log        *bytes.Buffer
}

func writeKey(t testing.TB, path string, priv ed25519.PrivateKey, passphrase string) ssh.PublicKey {
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

func newEd25519(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startTestSSHD starts sshd with extra sshd_config lines.
func startTestSSHD(t testing.TB, extra ...string) *testSSHD {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a throwaway sshd")
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("no /usr/sbin/sshd (apt-get install openssh-server)")
	}
	os.MkdirAll("/run/sshd", 0o755)
	dir := t.TempDir()
	s := &testSSHD{t: t, dir: dir, home: filepath.Join(dir, "home"), log: &bytes.Buffer{}}
	os.MkdirAll(s.home, 0o700)
	hostPriv := newEd25519(t)
	s.hostKey = writeKey(t, filepath.Join(dir, "hostkey"), hostPriv, "")
	s.clientPriv = newEd25519(t)
	s.clientKey = filepath.Join(dir, "id_ed25519")
	cpub := writeKey(t, s.clientKey, s.clientPriv, "")
	s.authorize(cpub)
	s.port = freePort(t)
	s.knownHosts = filepath.Join(dir, "known_hosts")
	os.WriteFile(s.knownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(s.addr())}, s.hostKey)+"\n"), 0o600)
	s.start(extra...)
	return s
}

func (s *testSSHD) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *testSSHD) authorize(pub ssh.PublicKey) {
	f, err := os.OpenFile(filepath.Join(s.dir, "authorized_keys"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	f.Write(ssh.MarshalAuthorizedKey(pub))
	f.Close()
}

func (s *testSSHD) start(extra ...string) {
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
`, s.port, s.dir, s.dir, s.dir, strings.Join(extra, "\n"))
	s.cfgPath = filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", s.cfgPath)
	s.cmd.Stderr = s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := s.cmd
	t.Cleanup(func() { s.kill(cmd) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not start: %v\n%s", err, s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends sshd and its sessions (its process group).
func (s *testSSHD) kill(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}

func (s *testSSHD) stop() { s.kill(s.cmd); s.cmd = nil }

// freeze stops sshd and every process under it (each connection runs in
// its own session) without closing their sockets: the node goes silent.
func (s *testSSHD) freeze() { s.signalTree(syscall.SIGSTOP) }
func (s *testSSHD) thaw()   { s.signalTree(syscall.SIGCONT) }

func (s *testSSHD) signalTree(sig syscall.Signal) {
	for _, pid := range descendants(s.cmd.Process.Pid) {
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

// mark returns a position in sshd's log for since.
func (s *testSSHD) mark() int { return s.log.Len() }

// since returns sshd's log after mark.
func (s *testSSHD) since(mark int) string { return s.log.String()[mark:] }

// options are Options for tests: this sshd's home, no ssh config, no agent,
// no terminal.
func (s *testSSHD) options() Options {
	return Options{
		HomeDir:       s.home,
		SSHConfigPath: filepath.Join(s.home, "no-ssh-config"),
		Environ:       []string{"USER=root"},
		NoTTY:         true,
		Stderr:        &bytes.Buffer{},
	}
}

// node is a config node for this sshd using the client key.
func (s *testSSHD) node(name string) *config.Node {
	return &config.Node{
		Name:         name,
		Address:      "127.0.0.1",
		Port:         s.port,
		User:         "root",
		IdentityFile: s.clientKey,
		KnownHosts:   s.knownHosts,
		DockerSocket: "/var/run/docker.sock",
	}
}

func testConfig(project string, nodes ...*config.Node) *config.Config {
	return &config.Config{Project: config.Project{Name: project}, Nodes: nodes}
}

func haveDocker(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/var/run/docker.sock"); err != nil {
		t.Skip("no Docker engine at /var/run/docker.sock")
	}
}

// NewSSHDNodeForTest starts a throwaway sshd and returns a Node connected
// through it to this machine's Docker engine (for the external suite test).
func NewSSHDNodeForTest(t *testing.T) Node {
	haveDocker(t)
	s := startTestSSHD(t)
	sess := Open(context.Background(), testConfig("p", s.node("sshd")), s.options())
	t.Cleanup(func() { sess.Close() })
	n, err := sess.Node("sshd")
	if err != nil {
		t.Fatal(err)
	}
	return n
}
