package transport

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/internal/sshdtest"
)

func resolverFor(t *testing.T, sshConfig string, cfg *config.Config) (*Resolver, string) {
	t.Helper()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	if sshConfig != "" {
		os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(sshConfig), 0o600)
	}
	r, err := NewResolver(cfg, Options{HomeDir: home, Environ: []string{"USER=alice"}})
	if err != nil {
		t.Fatal(err)
	}
	return r, home
}

func ids(t *Target) []string {
	var out []string
	for _, id := range t.identities {
		s := id.path
		if id.explicit {
			s += " (explicit)"
		}
		out = append(out, s)
	}
	return out
}

func TestSSHConfigDefaults(t *testing.T) {
	n := &config.Node{Name: "web", Address: "10.0.0.5"}
	r, home := resolverFor(t, "", sshdtest.Config("p", n))
	tg, err := r.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	if tg.host != "10.0.0.5" || tg.port != 22 || tg.user != "alice" || tg.via != nil || tg.hostKey != "" {
		t.Errorf("target: %+v", tg)
	}
	want := []string{home + "/.ssh/id_ed25519", home + "/.ssh/id_ecdsa", home + "/.ssh/id_rsa"}
	if got := ids(tg); !reflect.DeepEqual(got, want) {
		t.Errorf("identities %v want %v", got, want)
	}
	if !reflect.DeepEqual(tg.knownHosts, []string{home + "/.ssh/known_hosts"}) {
		t.Errorf("known hosts %v", tg.knownHosts)
	}
}

const sshConfigText = `
Host web
  HostName 10.0.0.5
  User deploy
  Port 2222
  IdentityFile ~/.ssh/web_key
  IdentityFile %d/.ssh/second_%r
  UserKnownHostsFile ~/.ssh/kh_web ~/.ssh/kh_other

Host db
  HostName db.internal
  ProxyJump bastion-user@bastion:2200

Host bastion
  HostName 192.0.2.1
  IdentityFile ~/.ssh/bastion_key

Host *
  User fallback
`

func TestSSHConfigHostAlias(t *testing.T) {
	n := &config.Node{Name: "n1", Address: "web"}
	r, home := resolverFor(t, sshConfigText, sshdtest.Config("p", n))
	tg, err := r.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	if tg.host != "10.0.0.5" || tg.port != 2222 || tg.user != "deploy" || tg.addr() != "10.0.0.5:2222" {
		t.Errorf("target: %+v", tg)
	}
	want := []string{home + "/.ssh/web_key", home + "/.ssh/second_deploy"}
	if got := ids(tg); !reflect.DeepEqual(got, want) {
		t.Errorf("identities %v want %v", got, want)
	}
	if !reflect.DeepEqual(tg.knownHosts, []string{home + "/.ssh/kh_web", home + "/.ssh/kh_other"}) {
		t.Errorf("known hosts %v", tg.knownHosts)
	}
}

// berth's own node settings win over ~/.ssh/config; its identity file goes
// first and the file's follow.
func TestSSHConfigNodeSettingsWin(t *testing.T) {
	n := &config.Node{Name: "n1", Address: "web", User: "root", Port: 22, IdentityFile: "~/berth_key", KnownHosts: "/etc/berth/kh"}
	r, home := resolverFor(t, sshConfigText, sshdtest.Config("p", n))
	tg, err := r.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	if tg.host != "10.0.0.5" || tg.port != 22 || tg.user != "root" {
		t.Errorf("target: %+v", tg)
	}
	want := []string{home + "/berth_key (explicit)", home + "/.ssh/web_key", home + "/.ssh/second_root"}
	if got := ids(tg); !reflect.DeepEqual(got, want) {
		t.Errorf("identities %v want %v", got, want)
	}
	if !reflect.DeepEqual(tg.knownHosts, []string{"/etc/berth/kh"}) {
		t.Errorf("known hosts %v", tg.knownHosts)
	}
}

// An explicit identity file replaces OpenSSH's default files (ssh -i).
func TestSSHConfigExplicitReplacesDefaults(t *testing.T) {
	n := &config.Node{Name: "n1", Address: "10.1.1.1"}
	cfg := sshdtest.Config("p", n)
	cfg.Project.SSH = config.SSHDefaults{User: "ops", Port: 2200, IdentityFile: "/keys/ops", KnownHosts: "/keys/known_hosts"}
	r, _ := resolverFor(t, "", cfg)
	tg, err := r.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(tg); !reflect.DeepEqual(got, []string{"/keys/ops (explicit)"}) {
		t.Errorf("identities %v", got)
	}
	if tg.user != "ops" || tg.port != 2200 || tg.knownHosts[0] != "/keys/known_hosts" {
		t.Errorf("project defaults not applied: %+v", tg)
	}
}

func TestSSHConfigProxyJump(t *testing.T) {
	n := &config.Node{Name: "n1", Address: "db"}
	r, home := resolverFor(t, sshConfigText, sshdtest.Config("p", n))
	tg, err := r.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	if tg.host != "db.internal" || tg.user != "fallback" {
		t.Errorf("target: %+v", tg)
	}
	v := tg.via
	if v == nil {
		t.Fatal("no jump host")
	}
	if v.host != "192.0.2.1" || v.port != 2200 || v.user != "bastion-user" || v.label != "bastion-user@bastion:2200" {
		t.Errorf("jump: %+v", v)
	}
	if got := ids(v); !reflect.DeepEqual(got, []string{home + "/.ssh/bastion_key"}) {
		t.Errorf("jump identities %v", got)
	}
}

func TestSSHConfigJumpNode(t *testing.T) {
	bastion := &config.Node{Name: "node1", Address: "10.0.0.11", User: "root", IdentityFile: "/k/node1", KnownHosts: "/k/kh1"}
	n := &config.Node{Name: "node3", Address: "10.0.0.13", User: "root", Jump: "node1"}
	r, _ := resolverFor(t, "", sshdtest.Config("p", bastion, n))
	tg, err := r.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	if tg.via == nil || tg.via.label != "node1" || tg.via.addr() != "10.0.0.11:22" || ids(tg.via)[0] != "/k/node1 (explicit)" {
		t.Fatalf("jump: %+v", tg.via)
	}
	// The bastion's connection is the same pool entry as node1's own.
	b, _ := r.Node(bastion)
	if b.key() != tg.via.key() {
		t.Errorf("bastion key %q != node1 key %q", tg.via.key(), b.key())
	}
}

func TestSSHConfigJumpChainAndErrors(t *testing.T) {
	n := &config.Node{Name: "n", Address: "10.9.9.9", Jump: "a@h1:2201, h2"}
	r, _ := resolverFor(t, "", sshdtest.Config("p", n))
	tg, err := r.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	// h2 is reached through h1.
	if tg.via == nil || tg.via.host != "h2" || tg.via.via == nil || tg.via.via.addr() != "h1:2201" || tg.via.via.user != "a" {
		t.Errorf("chain: %+v via %+v", tg.via, tg.via.via)
	}

	a := &config.Node{Name: "a", Address: "1.1.1.1", Jump: "b"}
	b := &config.Node{Name: "b", Address: "2.2.2.2", Jump: "a"}
	l := &config.Node{Name: "l", Address: "local"}
	x := &config.Node{Name: "x", Address: "3.3.3.3", Jump: "l"}
	bad := &config.Node{Name: "bad", Address: "3.3.3.3", Jump: "h:notaport"}
	r, _ = resolverFor(t, "", sshdtest.Config("p", a, b, l, x, bad))
	for _, c := range []struct {
		n    *config.Node
		want string
	}{
		{a, "cycle"},
		{x, "local engine"},
		{bad, "bad port"},
	} {
		_, err := r.Node(c.n)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.n.Name, err, c.want)
		}
	}
}

func TestSSHConfigProxyJumpCycle(t *testing.T) {
	n := &config.Node{Name: "n", Address: "a"}
	r, _ := resolverFor(t, "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n", sshdtest.Config("p", n))
	if _, err := r.Node(n); err == nil || !strings.Contains(err.Error(), "hops") {
		t.Errorf("got %v", err)
	}
}

func TestSSHConfigBadFile(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, "cfg")
	os.WriteFile(path, []byte("Host a\n  Port 22\n  Match exec foo\n"), 0o600)
	_, err := NewResolver(sshdtest.Config("p"), Options{HomeDir: home, SSHConfigPath: path})
	if err == nil {
		t.Skip("ssh_config accepted the file")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error does not name the file: %v", err)
	}
}

// A ProxyJump host from ~/.ssh/config verifies against the node's
// known_hosts (berth's setting), unless the file names its own.
func TestSSHConfigProxyJumpKnownHosts(t *testing.T) {
	n := &config.Node{Name: "n1", Address: "db", KnownHosts: "/k/known_hosts"}
	r, _ := resolverFor(t, sshConfigText, sshdtest.Config("p", n))
	tg, err := r.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tg.via.knownHosts, []string{"/k/known_hosts"}) {
		t.Errorf("jump host known_hosts %v", tg.via.knownHosts)
	}
}
