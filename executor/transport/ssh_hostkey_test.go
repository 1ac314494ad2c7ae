package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/berth-dev/berth/executor/internal/sshdtest"
)

func pubKey(t *testing.T) ssh.PublicKey {
	k, err := ssh.NewPublicKey(sshdtest.NewEd25519(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecdsaKey(t *testing.T) ssh.PublicKey {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ssh.NewPublicKey(&ec.PublicKey)
	return k
}

func verifierFor(t *testing.T, content string, trust bool, pin string) (*hostKeyVerifier, string, *knownHostsWriter) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "known_hosts")
	if content != "" {
		os.WriteFile(file, []byte(content), 0o600)
	}
	tg := &Target{label: "n1", host: "10.0.0.5", port: 22, knownHosts: []string{file}, hostKey: pin}
	w := &knownHostsWriter{}
	v, err := newHostKeyVerifier(tg, trust, w.append)
	if err != nil {
		t.Fatal(err)
	}
	return v, file, w
}

var remote = &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 22}

func TestHostKeyKnown(t *testing.T) {
	k := pubKey(t)
	v, _, _ := verifierFor(t, knownhosts.Line([]string{"10.0.0.5"}, k)+"\n", false, "")
	if err := v.callback("10.0.0.5:22", remote, k); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.algorithms, []string{ssh.KeyAlgoED25519}) {
		t.Errorf("algorithms %v", v.algorithms)
	}
}

func TestHostKeyAlgorithmsRecorded(t *testing.T) {
	ed, ec := pubKey(t), ecdsaKey(t)
	content := knownhosts.Line([]string{"10.0.0.5"}, ec) + "\n" + knownhosts.Line([]string{"other"}, ed) + "\n" + knownhosts.Line([]string{"10.0.0.5"}, ed) + "\n"
	v, _, _ := verifierFor(t, content, false, "")
	if !reflect.DeepEqual(v.algorithms, []string{ssh.KeyAlgoECDSA256, ssh.KeyAlgoED25519}) {
		t.Errorf("algorithms %v", v.algorithms)
	}
	// Both recorded keys verify.
	for _, k := range []ssh.PublicKey{ed, ec} {
		if err := v.callback("10.0.0.5:22", remote, k); err != nil {
			t.Errorf("%s: %v", k.Type(), err)
		}
	}
	// Unknown host: no limit.
	v2, _, _ := verifierFor(t, knownhosts.Line([]string{"other"}, ed)+"\n", false, "")
	if v2.algorithms != nil {
		t.Errorf("algorithms for an unknown host: %v", v2.algorithms)
	}
}

func TestHostKeyUnknown(t *testing.T) {
	k := pubKey(t)
	v, file, _ := verifierFor(t, "", false, "")
	err := v.callback("10.0.0.5:22", remote, k)
	var he *HostKeyError
	if !errors.As(err, &he) || !he.Unknown {
		t.Fatalf("got %v", err)
	}
	line := knownhosts.Line([]string{"10.0.0.5"}, k)
	for _, want := range []string{"not known", ssh.FingerprintSHA256(k), "add this line to " + file + ": " + line} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %s", want, err)
		}
	}
	if v.failure() != err {
		t.Error("failure not kept")
	}
}

func TestHostKeyChangedNamesFileAndLine(t *testing.T) {
	old, offered := pubKey(t), pubKey(t)
	content := "# header\n\n" + knownhosts.Line([]string{"10.0.0.5"}, old) + "\n"
	v, file, _ := verifierFor(t, content, true, "")
	err := v.callback("10.0.0.5:22", remote, offered)
	var he *HostKeyError
	if !errors.As(err, &he) || he.Unknown || he.KnownLine != 3 || he.KnownFile != file {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(err.Error(), file+":3") || !strings.Contains(err.Error(), "CHANGED") {
		t.Errorf("message: %s", err)
	}
	if b, _ := os.ReadFile(file); string(b) != content {
		t.Error("trust-new-hosts changed the file for a changed key")
	}
}

func TestHostKeyTrustNewRecords(t *testing.T) {
	k := pubKey(t)
	// A file without a trailing newline: the new line starts on its own.
	v, file, _ := verifierFor(t, "# no newline", true, "")
	v.target.port = 2222
	if err := v.callback("10.0.0.5:2222", remote, k); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	want := "# no newline\n" + knownhosts.Line([]string{"[10.0.0.5]:2222"}, k) + "\n"
	if string(b) != want {
		t.Errorf("file:\n%q\nwant\n%q", b, want)
	}
	if v.recorded != file {
		t.Errorf("recorded %q", v.recorded)
	}
}

func TestHostKeyRevoked(t *testing.T) {
	k := pubKey(t)
	v, _, _ := verifierFor(t, "@revoked * "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))+"\n", true, "")
	err := v.callback("10.0.0.5:22", remote, k)
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("got %v", err)
	}
}

func TestHostKeyPinned(t *testing.T) {
	k := pubKey(t)
	line := knownhosts.Line([]string{"10.0.0.5"}, k) + "\n"
	v, _, _ := verifierFor(t, line, false, ssh.FingerprintSHA256(k))
	if err := v.callback("10.0.0.5:22", remote, k); err != nil {
		t.Errorf("matching pin: %v", err)
	}
	v, _, _ = verifierFor(t, line, false, "SHA256:nope")
	if err := v.callback("10.0.0.5:22", remote, k); err == nil || !strings.Contains(err.Error(), "pinned host_key SHA256:nope") {
		t.Errorf("wrong pin: %v", err)
	}
}
