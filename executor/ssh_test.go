package executor

// Open over SSH against a throwaway sshd (executor/internal/sshdtest): host
// keys, authentication, jump hosts, keep-alive and request deadlines as a
// session's nodes see them, through transport, engine and the core
// together. They stay with the core because they test what Open and
// Gather report; transport's own tests are in executor/transport.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/internal/sshdtest"
	"github.com/berth-dev/berth/executor/transport"
)

// openErr opens a one-node session and returns the node's connection error.
func openErr(t *testing.T, n *config.Node, opts Options) error {
	t.Helper()
	sess := Open(context.Background(), sshdtest.Config("p", n), opts)
	defer sess.Close()
	_, err := sess.Node(n.Name)
	return err
}

// wantOneLine checks a connection error: one line, naming the node, with
// every fragment.
func wantOneLine(t *testing.T, err error, node string, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if !strings.HasPrefix(msg, node+": ") {
		t.Errorf("error does not start with the node's name %q: %s", node, msg)
	}
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			t.Errorf("error lacks %q: %s", f, msg)
		}
	}
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node != node {
		t.Errorf("error is not a *NodeError for %s: %#v", node, err)
	}
	t.Logf("error: %s", msg)
}

// noAuthAttempt checks that sshd saw no authentication: nothing was sent to
// a host whose key did not verify.
func noAuthAttempt(t *testing.T, s *sshdtest.SSHD, mark int) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	log := s.Since(mark)
	for _, bad := range []string{"Accepted", "Failed publickey", "Postponed", "userauth"} {
		if strings.Contains(log, bad) {
			t.Errorf("sshd saw an authentication attempt (%q):\n%s", bad, log)
		}
	}
}

func TestSSHGather(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	ctx := context.Background()
	cfg := sshdtest.Config("p", s.Node("n1"))
	// A service that publishes a port makes the gather read the node's
	// listening sockets.
	cfg.Services = []*config.Service{{Name: "web", Image: "x", Ports: []config.Port{{Target: 80, Protocol: "tcp"}}}}
	sess := Open(ctx, cfg, sshdOptions(s))
	defer sess.Close()
	if _, err := sess.Node("n1"); err != nil {
		t.Fatal(err)
	}
	live := sess.Gather(ctx)
	st := live.Nodes["n1"]
	if !st.Reachable {
		t.Fatalf("unreachable: %s", st.Error)
	}
	if st.Engine.Version == "" || st.Engine.APIVersion == "" || st.Engine.CPUs == 0 || st.Engine.OS == "" {
		t.Errorf("engine facts: %+v", st.Engine)
	}
	var sshPort bool
	for _, p := range st.HostPorts {
		if p.Protocol == "tcp" && p.Port == s.Port {
			sshPort = true
		}
	}
	if !sshPort {
		t.Errorf("host ports %v lack sshd's port %d", st.HostPorts, s.Port)
	}
	// Without published ports the gather skips that read.
	cfg.Services = nil
	sess2 := Open(ctx, cfg, sshdOptions(s))
	defer sess2.Close()
	if st := sess2.Gather(ctx).Nodes["n1"]; !st.Reachable || len(st.HostPorts) != 0 {
		t.Errorf("a gather without published ports read host ports: %+v", st)
	}
}

func TestSSHUnknownHostKey(t *testing.T) {
	s := sshdtest.Start(t)
	n := s.Node("n1")
	n.KnownHosts = filepath.Join(t.TempDir(), "known_hosts") // does not exist
	mark := s.Mark()
	err := openErr(t, n, sshdOptions(s))
	wantOneLine(t, err, "n1", "not known", ssh.FingerprintSHA256(s.HostKey),
		"add this line to "+n.KnownHosts+": "+knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey),
		"-trust-new-hosts")
	var he *transport.HostKeyError
	if !errors.As(err, &he) || !he.Unknown {
		t.Errorf("not an unknown-host transport.HostKeyError: %#v", err)
	}
	noAuthAttempt(t, s, mark)
	if _, err := os.Stat(n.KnownHosts); err == nil {
		t.Error("known_hosts written without -trust-new-hosts")
	}
}

func TestSSHChangedHostKey(t *testing.T) {
	s := sshdtest.Start(t)
	n := s.Node("n1")
	other := sshdtest.NewEd25519(t)
	otherPub, _ := ssh.NewPublicKey(other.Public())
	n.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	content := "# a comment\nexample.org " + string(ssh.MarshalAuthorizedKey(otherPub)) +
		knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, otherPub) + "\n"
	os.WriteFile(n.KnownHosts, []byte(content), 0o600)

	// A counting agent shows no key was even offered.
	sock, signs := startAgent(t, s.ClientPriv)
	opts := sshdOptions(s)
	opts.SSH.Environ = append(opts.SSH.Environ, "SSH_AUTH_SOCK="+sock)
	opts.SSH.TrustNewHosts = true // never accepts a changed key
	mark := s.Mark()
	err := openErr(t, n, opts)
	wantOneLine(t, err, "n1", "CHANGED", ssh.FingerprintSHA256(s.HostKey),
		fmt.Sprintf("%s:3 records ssh-ed25519 %s", n.KnownHosts, ssh.FingerprintSHA256(otherPub)),
		knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey))
	noAuthAttempt(t, s, mark)
	if signs.Load() != 0 {
		t.Errorf("agent was asked to sign %d times for a host that did not verify", signs.Load())
	}
	if b, _ := os.ReadFile(n.KnownHosts); string(b) != content {
		t.Errorf("known_hosts changed:\n%s", b)
	}
}

func TestSSHTrustNewHosts(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	n := s.Node("n1")
	n.KnownHosts = filepath.Join(t.TempDir(), "sub", "known_hosts")
	opts := sshdOptions(s)
	opts.SSH.TrustNewHosts = true
	var warn bytes.Buffer
	opts.SSH.Stderr = &warn
	if err := openErr(t, n, opts); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(n.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	want := knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey) + "\n"
	if string(b) != want {
		t.Errorf("known_hosts:\n%s\nwant\n%s", b, want)
	}
	if !strings.Contains(warn.String(), "recorded the new host key") {
		t.Errorf("no warning: %q", warn.String())
	}
	// Now known: works without the option.
	if err := openErr(t, n, sshdOptions(s)); err != nil {
		t.Fatal(err)
	}
}

func TestSSHPinnedHostKey(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	n := s.Node("n1")
	n.HostKey = ssh.FingerprintSHA256(s.HostKey)
	if err := openErr(t, n, sshdOptions(s)); err != nil {
		t.Fatal(err)
	}
	n.HostKey = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	mark := s.Mark()
	err := openErr(t, n, sshdOptions(s))
	wantOneLine(t, err, "n1", "not the pinned host_key "+n.HostKey, ssh.FingerprintSHA256(s.HostKey))
	noAuthAttempt(t, s, mark)

	// -trust-new-hosts never records a key that contradicts the pin.
	n.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	opts := sshdOptions(s)
	opts.SSH.TrustNewHosts = true
	err = openErr(t, n, opts)
	wantOneLine(t, err, "n1", "not the pinned host_key")
	if _, err := os.Stat(n.KnownHosts); err == nil {
		t.Error("recorded a key that contradicts the pin")
	}
}

// A host with several key types: known_hosts records only one (not the type
// the client would prefer); without limiting HostKeyAlgorithms knownhosts
// would report a mismatch.
func TestSSHHostKeyAlgorithmsFromKnownHosts(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(ec, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.Dir, "hostkey_ecdsa"), pem.EncodeToMemory(blk), 0o600)
	ecPub, _ := ssh.NewPublicKey(&ec.PublicKey)
	s.Stop()
	s.Start("HostKey " + filepath.Join(s.Dir, "hostkey_ecdsa"))
	for _, known := range []ssh.PublicKey{ecPub, s.HostKey} {
		n := s.Node("n1")
		n.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(n.KnownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, known)+"\n"), 0o600)
		if err := openErr(t, n, sshdOptions(s)); err != nil {
			t.Errorf("known %s: %v", known.Type(), err)
		}
	}
}

func TestSSHWrongUser(t *testing.T) {
	s := sshdtest.Start(t)
	n := s.Node("n1")
	n.User = "nobody"
	err := openErr(t, n, sshdOptions(s))
	wantOneLine(t, err, "n1", "authentication as nobody@"+s.Addr()+" failed", s.ClientKey, "user and identity_file")
}

func TestSSHMissingKeyFile(t *testing.T) {
	s := sshdtest.Start(t)
	n := s.Node("n1")
	n.IdentityFile = filepath.Join(t.TempDir(), "id_missing")
	err := openErr(t, n, sshdOptions(s))
	wantOneLine(t, err, "n1", "identity file "+n.IdentityFile+" does not exist")
}

func TestSSHNoKeys(t *testing.T) {
	s := sshdtest.Start(t)
	n := s.Node("n1")
	n.IdentityFile = ""
	err := openErr(t, n, sshdOptions(s))
	wantOneLine(t, err, "n1", "no SSH key", "identity_file")
}

func TestSSHRefused(t *testing.T) {
	s := sshdtest.Start(t)
	n := s.Node("n1")
	n.Port = sshdtest.FreePort(t)
	start := time.Now()
	err := openErr(t, n, sshdOptions(s))
	wantOneLine(t, err, "n1", "connection refused")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// A server that accepts TCP but never speaks SSH: the connect timeout
// bounds the handshake.
func TestSSHHandshakeTimeout(t *testing.T) {
	s := sshdtest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	n := s.Node("n1")
	n.Port = l.Addr().(*net.TCPAddr).Port
	opts := sshdOptions(s)
	opts.SSH.ConnectTimeout = 500 * time.Millisecond
	start := time.Now()
	err = openErr(t, n, opts)
	wantOneLine(t, err, "n1", "no answer within 500ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// startAgent serves an in-process ssh-agent holding keys on a temporary unix
// socket; it counts signatures.
func startAgent(t *testing.T, keys ...any) (string, *atomic.Int32) {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ca := &countingAgent{ExtendedAgent: kr.(agent.ExtendedAgent)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				agent.ServeAgent(ca, c)
			}()
		}
	}()
	return sock, &ca.signs
}

type countingAgent struct {
	agent.ExtendedAgent
	signs atomic.Int32
}

func (a *countingAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	a.signs.Add(1)
	return a.ExtendedAgent.Sign(key, data)
}

func (a *countingAgent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	a.signs.Add(1)
	return a.ExtendedAgent.SignWithFlags(key, data, flags)
}

func TestSSHAgent(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	// The agent holds an unrelated key first, then the authorised one.
	sock, signs := startAgent(t, sshdtest.NewEd25519(t), s.ClientPriv)
	n := s.Node("n1")
	n.IdentityFile = "" // only the agent (no default key files in the test home)
	opts := sshdOptions(s)
	opts.SSH.Environ = append(opts.SSH.Environ, "SSH_AUTH_SOCK="+sock)
	if err := openErr(t, n, opts); err != nil {
		t.Fatal(err)
	}
	if signs.Load() != 1 {
		t.Errorf("agent signed %d times, want 1", signs.Load())
	}
}

func TestSSHPassphraseKey(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	priv := sshdtest.NewEd25519(t)
	path := filepath.Join(t.TempDir(), "id_locked")
	s.Authorize(sshdtest.WriteKey(t, path, priv, "sesame"))
	n := s.Node("n1")
	n.IdentityFile = path

	// No terminal: one clear line that says how to fix it.
	err := openErr(t, n, sshdOptions(s))
	wantOneLine(t, err, "n1", "identity file "+path+" is protected by a passphrase", "ssh-add "+path)
	var nt *transport.NoTerminalError
	if !errors.As(err, &nt) {
		t.Errorf("not a transport.NoTerminalError: %#v", err)
	}

	// A terminal: asked once, for two nodes on the same key.
	opts := sshdOptions(s)
	var prompt bytes.Buffer
	opts.SSH.Stdin, opts.SSH.Stderr, opts.SSH.IsTerminal = strings.NewReader("sesame\n"), &prompt, true
	n2 := s.Node("n2")
	n2.IdentityFile = path
	n2.Address = "localhost" // another connection
	n2.KnownHosts = filepath.Join(t.TempDir(), "kh")
	os.WriteFile(n2.KnownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("localhost", fmt.Sprint(s.Port)))}, s.HostKey)+"\n"), 0o600)
	sess := Open(context.Background(), sshdtest.Config("p", n, n2), opts)
	defer sess.Close()
	for _, name := range []string{"n1", "n2"} {
		if _, err := sess.Node(name); err != nil {
			t.Error(err)
		}
	}
	if c := strings.Count(prompt.String(), "Enter passphrase for key '"+path+"'"); c != 1 {
		t.Errorf("asked %d times: %q", c, prompt.String())
	}
}

// The passphrase is asked only when the server accepts the key: an agent
// key that works first means no prompt.
func TestSSHPassphraseNotAskedWhenAgentWorks(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	path := filepath.Join(t.TempDir(), "id_locked")
	sshdtest.WriteKey(t, path, sshdtest.NewEd25519(t), "sesame")
	sock, _ := startAgent(t, s.ClientPriv)
	n := s.Node("n1")
	n.IdentityFile = path
	opts := sshdOptions(s)
	opts.SSH.Environ = append(opts.SSH.Environ, "SSH_AUTH_SOCK="+sock)
	if err := openErr(t, n, opts); err != nil {
		t.Fatal(err)
	}
}

func TestSSHJumpViaNode(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	bastion := s.Node("bastion")
	target := s.Node("target")
	target.Address = "localhost" // as the bastion resolves it
	target.Jump = "bastion"
	target.KnownHosts = filepath.Join(t.TempDir(), "kh")
	os.WriteFile(target.KnownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("localhost", fmt.Sprint(s.Port)))}, s.HostKey)+"\n"), 0o600)
	ctx := context.Background()
	sess := Open(ctx, sshdtest.Config("p", bastion, target), sshdOptions(s))
	defer sess.Close()
	live := sess.Gather(ctx)
	for _, name := range []string{"bastion", "target"} {
		if st := live.Nodes[name]; !st.Reachable {
			t.Fatalf("%s: %s", name, st.Error)
		}
	}
	// The bastion's own connection carries the jump: two SSH logins.
	if c := strings.Count(s.Log.String(), "Accepted publickey"); c != 2 {
		t.Errorf("%d logins, want 2:\n%s", c, s.Log)
	}
	if !strings.Contains(s.Log.String(), "direct-tcpip") && !strings.Contains(s.Log.String(), "Connection from 127.0.0.1") {
		t.Logf("sshd log:\n%s", s.Log)
	}
}

func TestSSHJumpSpecAndErrors(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	target := s.Node("target")
	target.Jump = "root@127.0.0.1:" + fmt.Sprint(s.Port)
	cfg := sshdtest.Config("p", target)
	cfg.Project.SSH.IdentityFile = s.ClientKey
	sess := Open(context.Background(), cfg, sshdOptions(s))
	if _, err := sess.Node("target"); err != nil {
		t.Fatal(err)
	}
	sess.Close()

	// A bastion that refuses: the error names the node and the hop.
	target.Jump = "root@127.0.0.1:" + fmt.Sprint(sshdtest.FreePort(t))
	sess = Open(context.Background(), cfg, sshdOptions(s))
	_, err := sess.Node("target")
	sess.Close()
	wantOneLine(t, err, "target", "jump host "+target.Jump+": connect to", "connection refused")

	// A target the bastion cannot reach.
	target.Jump = "root@127.0.0.1:" + fmt.Sprint(s.Port)
	target.Port = sshdtest.FreePort(t)
	sess = Open(context.Background(), cfg, sshdOptions(s))
	_, err = sess.Node("target")
	sess.Close()
	wantOneLine(t, err, "target", fmt.Sprintf("connect to 127.0.0.1:%d through jump host %s: connection refused", target.Port, target.Jump))
}

// A node that goes silent (sshd frozen, its sockets open) is reported
// within the keep-alive bound, not after a request timeout.
func TestSSHSilentNodeKeepAlive(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	opts := sshdOptions(s)
	opts.SSH.KeepAlive = 200 * time.Millisecond
	opts.SSH.KeepAliveMax = 3
	opts.RequestTimeout = time.Minute
	ctx := context.Background()
	sess := Open(ctx, sshdtest.Config("p", s.Node("n1")), opts)
	defer sess.Close()
	if _, err := sess.Node("n1"); err != nil {
		t.Fatal(err)
	}
	s.Freeze()
	defer s.Thaw()
	start := time.Now()
	live := sess.Gather(ctx)
	d := time.Since(start)
	st := live.Nodes["n1"]
	if st.Reachable {
		t.Fatal("a frozen node was read as reachable")
	}
	if !strings.HasPrefix(st.Error, "n1: ") || !strings.Contains(st.Error, "keep-alive") {
		t.Errorf("error: %s", st.Error)
	}
	if d > 5*time.Second { // about 4*KeepAlive; generous for a loaded CI machine
		t.Errorf("took %s, want about %s", d, 4*opts.SSH.KeepAlive)
	}
	t.Logf("%s after %s", st.Error, d)
}

// The default keep-alive bound is documented as ~8 s: well under 30 s.
func TestDefaultSilentNodeBound(t *testing.T) {
	o := Options{}.withDefaults()
	if b := o.SSH.KeepAlive * time.Duration(o.SSH.KeepAliveMax+1); b > 10*time.Second {
		t.Errorf("silent node reported after up to %s", b)
	}
}

// 100 concurrent API calls over one connection, with sshd allowing one
// session and one unauthenticated connection: forwarding channels are not
// sessions.
func TestSSHConcurrentCallsMaxSessions1(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t, "MaxSessions 1", "MaxStartups 1")
	ctx := context.Background()
	sess := Open(ctx, sshdtest.Config("p", s.Node("n1")), sshdOptions(s))
	defer sess.Close()
	n, err := sess.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	peak := openAtOnce(t, n, 20)
	concurrentCalls(t, n, 100)
	if peak() < 20 {
		t.Errorf("at most %d engine channels were open at once; want 20 (over sshd's MaxSessions)", peak())
	}
}

func concurrentCalls(t *testing.T, n Node, count int) {
	t.Helper()
	ctx := context.Background()
	var g errgroup.Group
	for i := 0; i < count; i++ {
		g.Go(func() error {
			switch i % 4 {
			case 0:
				_, err := n.Info(ctx)
				return err
			case 1:
				_, _, err := n.Containers(ctx, "p")
				return err
			case 2:
				_, err := n.Images(ctx)
				return err
			default:
				_, err := n.Volumes(ctx, nil)
				return err
			}
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestSSHDialContainer(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "hello\n")
		io.Copy(io.Discard, c)
		c.Close()
	}()
	sess := Open(context.Background(), sshdtest.Config("p", s.Node("n1")), sshdOptions(s))
	defer sess.Close()
	n, err := sess.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.DialContainer(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatalf("deadline: %v", err)
	}
	b := make([]byte, 6)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello\n" {
		t.Fatalf("read %q %v", b, err)
	}
	// A read deadline expires as a timeout.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = c.Read(b)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read after deadline: %v", err)
	}
	// A closed port: an error naming the address.
	_, err = n.DialContainer(context.Background(), "127.0.0.1:"+fmt.Sprint(sshdtest.FreePort(t)))
	if err == nil {
		t.Error("dial to a closed port succeeded")
	}
}

// Closing the session closes the SSH connection; the node's calls then fail
// (never "no containers").
func TestSSHClosedNodeFails(t *testing.T) {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	sess := Open(context.Background(), sshdtest.Config("p", s.Node("n1")), sshdOptions(s))
	n, err := sess.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	if _, _, err := n.Containers(context.Background(), "p"); err == nil {
		t.Error("containers after close: no error")
	}
}

// socketEngine serves a unix socket for a node's docker_socket: /_ping answers
// as an engine does (so that the node connects), everything else goes to
// rest. It stops when the test ends.
func socketEngine(t *testing.T, rest http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Api-Version", "1.41")
			w.Header().Set("OSType", "linux")
			io.WriteString(w, "OK")
			return
		}
		rest(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// hang answers nothing until the client goes away.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// sshdNodeWithSocket opens a session to the throwaway sshd whose node's
// docker_socket is sock, with the given request timeout.
func sshdNodeWithSocket(t *testing.T, s *sshdtest.SSHD, sock string, requestTimeout time.Duration) (*Session, time.Duration) {
	t.Helper()
	n := s.Node("n1")
	n.DockerSocket = sock
	opts := sshdOptions(s)
	opts.RequestTimeout = requestTimeout
	start := time.Now()
	sess := Open(context.Background(), sshdtest.Config("p", n), opts)
	t.Cleanup(func() { sess.Close() })
	return sess, time.Since(start)
}

// A node whose SSH connection is fine but whose engine socket accepts and
// never answers fails each request at the request timeout, with an error
// naming the node; the keep-alive (which the SSH server answers) has
// nothing to do with it.
func TestSSHRequestDeadline(t *testing.T) {
	s := sshdtest.Start(t)
	const timeout = time.Second
	t.Run("engine-never-answers", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "engine.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		sess, took := sshdNodeWithSocket(t, s, sock, timeout)
		_, err = sess.Node("n1")
		wantOneLine(t, err, "n1", "docker engine at "+sock+" over SSH: ping engine: no answer within the request timeout (1s)")
		if took < timeout || took > 10*time.Second {
			t.Errorf("the node failed after %s; want the 1 s request timeout", took)
		}
	})
	t.Run("engine-stops-answering", func(t *testing.T) {
		sess, _ := sshdNodeWithSocket(t, s, socketEngine(t, hang), timeout)
		n, err := sess.Node("n1")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		st := sess.Gather(context.Background()).Nodes["n1"]
		took := time.Since(start)
		if st.Reachable {
			t.Fatal("a node whose engine does not answer was read as reachable")
		}
		if !strings.HasPrefix(st.Error, "n1: ") || !strings.Contains(st.Error, "no answer within the request timeout (1s)") ||
			strings.Contains(st.Error, "keep-alive") {
			t.Errorf("error: %s", st.Error)
		}
		if took < timeout || took > 10*time.Second {
			t.Errorf("the gather failed after %s; want the 1 s request timeout", took)
		}
		// The SSH connection is still there: the next request is answered.
		if err := n.(*engine.Node).Ping(context.Background()); err != nil {
			t.Errorf("ping after the timeouts: %v", err)
		}
		t.Logf("%s after %s", st.Error, took)
	})
}

// zeros is an endless stream.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// slowSource yields a few bytes, waits, then a few more and ends.
type slowSource struct {
	pause time.Duration
	n     int
}

func (s *slowSource) Read(b []byte) (int, error) {
	s.n++
	switch s.n {
	case 1, 3:
		return copy(b, "some bytes"), nil
	case 2:
		time.Sleep(s.pause)
		return 0, nil
	}
	return 0, io.EOF
}

// LoadImage and PullImage have no overall deadline but fail once nothing
// moves for the request timeout; a slow source or a slow but progressing
// engine does not make them fail.
func TestSSHImageStreamsIdleDeadline(t *testing.T) {
	s := sshdtest.Start(t)
	const idle = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node := func(t *testing.T, rest http.HandlerFunc) Node {
		sess, _ := sshdNodeWithSocket(t, s, socketEngine(t, rest), idle)
		n, err := sess.Node("n1")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	bounded := func(t *testing.T, what string, took time.Duration, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "no progress for 1s (the request timeout)") {
			t.Errorf("%s: %v", what, err)
		}
		if took < idle || took > 10*time.Second {
			t.Errorf("%s failed after %s; want the 1 s idle bound", what, took)
		}
		t.Logf("%s: %v after %s", what, err, took)
	}
	t.Run("load-engine-stops-reading", func(t *testing.T) {
		n := node(t, hang)
		start := time.Now()
		err := n.LoadImage(ctx, zeros{})
		bounded(t, "LoadImage", time.Since(start), err)
	})
	t.Run("load-slow-source", func(t *testing.T) {
		n := node(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, `{"stream":"Loaded image: x:y\n"}`+"\n")
		})
		if err := n.LoadImage(ctx, &slowSource{pause: 3 * idle}); err != nil {
			t.Errorf("a load whose source paused for 3 s (idle bound 1 s) failed: %v", err)
		}
	})
	progress := func(lines int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < lines; i++ {
				fmt.Fprintf(w, `{"status":"Downloading","id":"abc","progressDetail":{"current":%d,"total":100}}`+"\n", i)
				w.(http.Flusher).Flush()
				select {
				case <-time.After(idle / 4):
				case <-r.Context().Done():
					return
				}
			}
			if lines == 1 {
				<-r.Context().Done() // then nothing
			}
		}
	}
	t.Run("pull-engine-stops-reporting", func(t *testing.T) {
		n := node(t, progress(1))
		start := time.Now()
		err := n.PullImage(ctx, "x:y", "")
		bounded(t, "PullImage", time.Since(start), err)
	})
	t.Run("pull-slow-progressing", func(t *testing.T) {
		n := node(t, progress(12)) // 3 s in all, a line every 250 ms
		start := time.Now()
		if err := n.PullImage(ctx, "x:y", ""); err != nil {
			t.Errorf("a pull reporting progress every 250 ms for %s failed: %v", time.Since(start), err)
		}
	})
}

// openAtOnce makes n's next engine channels wait, on their first write,
// until need of them are open at the same moment (or 10 s went by), and
// returns a function reporting the most that were open at once. With need
// above sshd's MaxSessions (10 by default) it shows that channels are not
// sessions.
func openAtOnce(t *testing.T, n Node, need int) (peak func() int) {
	t.Helper()
	d := n.(*engine.Node)
	var open, most atomic.Int32
	arrived := make(chan struct{}, need)
	release := make(chan struct{})
	go func() {
		timeout := time.After(10 * time.Second)
		for i := 0; i < need; i++ {
			select {
			case <-arrived:
			case <-timeout:
				close(release)
				return
			}
		}
		close(release)
	}()
	tr := d.HTTPTransport()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cur := open.Add(1)
		for {
			m := most.Load()
			if cur <= m || most.CompareAndSwap(m, cur) {
				break
			}
		}
		return &barrierConn{Conn: c, open: &open, arrived: arrived, release: release}, nil
	}
	return func() int { return int(most.Load()) }
}

type barrierConn struct {
	net.Conn
	open             *atomic.Int32
	arrived, release chan struct{}
	first, closed    sync.Once
}

func (c *barrierConn) Write(b []byte) (int, error) {
	c.first.Do(func() {
		select {
		case c.arrived <- struct{}{}:
		default:
		}
		<-c.release
	})
	return c.Conn.Write(b)
}

func (c *barrierConn) Close() error {
	c.closed.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}
