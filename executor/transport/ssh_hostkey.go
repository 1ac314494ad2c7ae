package transport

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/berth-dev/berth/executor/internal/msg"
)

// HostKeyError is a host key that did not verify. Nothing is sent to such a
// host: the check runs during the key exchange, before authentication.
type HostKeyError struct {
	Host        string // "host" or "[host]:port", as known_hosts names it
	Offered     ssh.PublicKey
	Unknown     bool   // no key recorded for the host
	KnownFile   string // for a changed key: where the recorded key is
	KnownLine   int
	KnownKey    ssh.PublicKey
	Pinned      string // for a pinned-fingerprint mismatch
	Revoked     bool
	WriteFile   string // the known_hosts file a line should go to
	RecordError error  // -trust-new-hosts could not record the key
}

func (e *HostKeyError) Error() string {
	line := knownhosts.Line([]string{e.Host}, e.Offered)
	fp := e.Offered.Type() + " " + ssh.FingerprintSHA256(e.Offered)
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key of %s (%s) is marked @revoked in known_hosts", e.Host, fp)
	case e.Pinned != "":
		return fmt.Sprintf("host key of %s is %s, not the pinned host_key %s", e.Host, fp, e.Pinned)
	case e.RecordError != nil:
		return fmt.Sprintf("host key of %s (%s) could not be recorded: %v", e.Host, fp, e.RecordError)
	case e.Unknown:
		return fmt.Sprintf("host key of %s is not known (offered %s): if that fingerprint is the node's, add this line to %s: %s (or run once with -trust-new-hosts)",
			e.Host, fp, e.WriteFile, line)
	}
	return fmt.Sprintf("host key of %s has CHANGED: offered %s, but %s:%d records %s %s; if the node's key was replaced on purpose, replace that line with: %s",
		e.Host, fp, e.KnownFile, e.KnownLine, e.KnownKey.Type(), ssh.FingerprintSHA256(e.KnownKey), line)
}

// hostKeyVerifier checks one target's host key against its known_hosts
// files and pinned fingerprint.
type hostKeyVerifier struct {
	target *Target
	trust  bool
	record func(file, line string) error
	// algorithms limits the key exchange to the key types recorded for the
	// host (nil: none recorded, any type). Without it a host with several
	// key types may offer one that is not recorded, and knownhosts reports
	// a mismatch.
	algorithms []string
	check      ssh.HostKeyCallback
	// err is the verification failure, kept so the caller can return it
	// rather than the handshake's wrapping.
	mu     sync.Mutex
	err    error
	called bool
	// recorded is set when -trust-new-hosts recorded the key.
	recorded string
}

// probeKey is a key no known_hosts file records: fixed bytes, not a
// generated key, so that no key generation (and the crypto self-tests it
// triggers) runs at every start of berth. Only its bytes are compared.
var probeKey = func() ssh.PublicKey {
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize)
	copy(pub, "berth: probe key, matches none!!")
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
}()

func newHostKeyVerifier(t *Target, trust bool, record func(file, line string) error) (*hostKeyVerifier, error) {
	v := &hostKeyVerifier{target: t, trust: trust, record: record}
	var files []string
	for _, f := range t.knownHosts {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("known_hosts %s: %w", f, err)
		}
	}
	if len(files) > 0 {
		cb, err := knownhosts.New(files...)
		if err != nil {
			return nil, fmt.Errorf("read known_hosts: %s", msg.OneLine(err.Error()))
		}
		v.check = cb
		v.algorithms = recordedAlgorithms(cb, t.addr())
	}
	return v, nil
}

// recordedAlgorithms asks the known_hosts database which keys it holds for
// addr (by offering a key that matches none) and returns the host key
// algorithms for their types.
func recordedAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch typ := k.Key.Type(); typ {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(typ)
		}
	}
	return algos
}

// callback is the ssh.HostKeyCallback for the target.
func (v *hostKeyVerifier) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := v.verify(hostname, remote, key)
	v.mu.Lock()
	v.called = true
	v.err = err
	v.mu.Unlock()
	return err
}

// wasCalled reports whether the server got as far as offering its key.
func (v *hostKeyVerifier) wasCalled() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.called
}

func (v *hostKeyVerifier) failure() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

func (v *hostKeyVerifier) verify(hostname string, remote net.Addr, key ssh.PublicKey) error {
	host := knownhosts.Normalize(v.target.addr())
	writeFile := ""
	if len(v.target.knownHosts) > 0 {
		writeFile = v.target.knownHosts[0]
	}
	base := HostKeyError{Host: host, Offered: key, WriteFile: writeFile}
	fp := ssh.FingerprintSHA256(key)
	pinOK := v.target.hostKey == "" || v.target.hostKey == fp
	var err error
	if v.check == nil {
		err = &knownhosts.KeyError{}
	} else {
		err = v.check(v.target.addr(), remote, key)
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
	case errors.As(err, &re):
		e := base
		e.Revoked = true
		return &e
	case errors.As(err, &ke) && len(ke.Want) == 0:
		if !v.trust {
			e := base
			e.Unknown = true
			return &e
		}
		if !pinOK {
			break // never record a key that contradicts the pin
		}
		line := knownhosts.Line([]string{host}, key)
		if err := v.record(writeFile, line); err != nil {
			e := base
			e.Unknown = true
			e.RecordError = err
			return &e
		}
		v.recorded = writeFile
	case errors.As(err, &ke):
		e := base
		known := ke.Want[0]
		// Show the recorded key of the offered type if there is one.
		for _, w := range ke.Want {
			if w.Key.Type() == key.Type() {
				known = w
				break
			}
		}
		e.KnownFile, e.KnownLine, e.KnownKey = known.Filename, known.Line, known.Key
		return &e
	default:
		return fmt.Errorf("verify host key of %s: %s", host, msg.OneLine(err.Error()))
	}
	if !pinOK {
		e := base
		e.Pinned = v.target.hostKey
		return &e
	}
	return nil
}

// knownHostsWriter appends lines to known_hosts files, one writer at a time
// (nodes connect in parallel).
type knownHostsWriter struct{ mu sync.Mutex }

func (w *knownHostsWriter) append(file, line string) error {
	if file == "" {
		return errors.New("no known_hosts file to write to")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// Start on a new line if the file does not end with one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		b := make([]byte, 1)
		if r, err := os.Open(file); err == nil {
			if _, err := r.ReadAt(b, st.Size()-1); err == nil && b[0] != '\n' {
				line = "\n" + line
			}
			r.Close()
		}
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
