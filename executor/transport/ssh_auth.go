package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"

	"github.com/berth-dev/berth/executor/internal/env"
	"github.com/berth-dev/berth/executor/internal/msg"
)

// keyStore loads identity files once per run and shares them between nodes,
// so a passphrase is asked once per file, not once per node.
type keyStore struct {
	opts Options

	mu   sync.Mutex
	keys map[string]*fileKey
	// promptMu serialises passphrase prompts (one terminal).
	promptMu sync.Mutex
}

func newKeyStore(opts Options) *keyStore {
	return &keyStore{opts: opts, keys: map[string]*fileKey{}}
}

// fileKey is an identity file. An encrypted key whose public half is known
// (OpenSSH format, or a .pub beside it) is decrypted only when a server
// accepts its public key, as OpenSSH does.
type fileKey struct {
	path   string
	pub    ssh.PublicKey
	signer ssh.Signer // nil until decrypted
	pem    []byte
	ks     *keyStore
	mu     sync.Mutex
	err    error
}

// load reads path. A missing file returns an error wrapping fs.ErrNotExist.
func (ks *keyStore) load(path string) (*fileKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if k, ok := ks.keys[path]; ok {
		return k, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k := &fileKey{path: path, ks: ks, pem: b}
	s, err := ssh.ParsePrivateKey(b)
	var pme *ssh.PassphraseMissingError
	switch {
	case err == nil:
		k.signer, k.pub = s, s.PublicKey()
	case errors.As(err, &pme):
		k.pub = pme.PublicKey
		if k.pub == nil {
			if pb, err := os.ReadFile(path + ".pub"); err == nil {
				if pub, _, _, _, err := ssh.ParseAuthorizedKey(pb); err == nil {
					k.pub = pub
				}
			}
		}
		if k.pub == nil {
			// No public half: decrypt now to learn it.
			if _, err := k.decrypt(); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("identity file %s: %s", path, msg.OneLine(err.Error()))
	}
	ks.keys[path] = k
	return k, nil
}

func (k *fileKey) decrypt() (ssh.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.signer != nil || k.err != nil {
		return k.signer, k.err
	}
	for try := 0; try < 3; try++ {
		pass, err := k.ks.passphrase(k.path)
		if err != nil {
			k.err = err
			return nil, err
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(k.pem, pass)
		if err == nil {
			k.signer = s
			if k.pub == nil {
				k.pub = s.PublicKey()
			}
			return s, nil
		}
		if !strings.Contains(err.Error(), "decryption password incorrect") && !errors.Is(err, errWrongPassphrase) {
			k.err = fmt.Errorf("identity file %s: %s", k.path, msg.OneLine(err.Error()))
			return nil, k.err
		}
	}
	k.err = fmt.Errorf("identity file %s: wrong passphrase (3 tries)", k.path)
	return nil, k.err
}

var errWrongPassphrase = errors.New("wrong passphrase")

// NoTerminalError is returned for a passphrase-protected identity file when
// there is no terminal to ask on.
type NoTerminalError struct{ Path string }

func (e *NoTerminalError) Error() string {
	return fmt.Sprintf("identity file %s is protected by a passphrase and there is no terminal to ask for it: add the key to ssh-agent (eval $(ssh-agent); ssh-add %s) and run again", e.Path, e.Path)
}

// passphrase asks for path's passphrase: on Options.Stdin when it is a
// terminal, else on /dev/tty, else it fails with NoTerminalError.
func (ks *keyStore) passphrase(path string) ([]byte, error) {
	ks.promptMu.Lock()
	defer ks.promptMu.Unlock()
	prompt := fmt.Sprintf("Enter passphrase for key '%s': ", path)
	if ks.opts.Stdin != nil && ks.opts.IsTerminal {
		w := ks.opts.Stderr
		if w == nil {
			w = io.Discard
		}
		fmt.Fprint(w, prompt)
		defer fmt.Fprintln(w)
		if f, ok := ks.opts.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return term.ReadPassword(int(f.Fd()))
		}
		line, err := bufio.NewReader(ks.opts.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return nil, fmt.Errorf("read passphrase for %s: %w", path, err)
		}
		return []byte(strings.TrimRight(line, "\r\n")), nil
	}
	if ks.opts.NoTTY {
		return nil, &NoTerminalError{Path: path}
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, &NoTerminalError{Path: path}
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, &NoTerminalError{Path: path}
	}
	fmt.Fprint(tty, prompt)
	defer fmt.Fprintln(tty)
	return term.ReadPassword(int(tty.Fd()))
}

// lazySigner signs with a fileKey, decrypting it on first use.
type lazySigner struct{ k *fileKey }

func (s lazySigner) PublicKey() ssh.PublicKey { return s.k.pub }

func (s lazySigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	sg, err := s.k.decrypt()
	if err != nil {
		return nil, err
	}
	return sg.Sign(r, data)
}

func (s lazySigner) SignWithAlgorithm(r io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	sg, err := s.k.decrypt()
	if err != nil {
		return nil, err
	}
	if as, ok := sg.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(r, data, algorithm)
	}
	return sg.Sign(r, data)
}

func (s lazySigner) Algorithms() []string {
	if s.k.pub.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{s.k.pub.Type()}
}

// authPlan is what a connection offers: the agent's keys, then the identity
// files' keys the agent does not hold.
type authPlan struct {
	signers []ssh.Signer
	offered []string // for the error message
	agent   net.Conn // closed after the handshake
	// err is a signing failure (passphrase) to report instead of the
	// handshake's generic message.
	errMu sync.Mutex
	err   error
}

func (a *authPlan) close() {
	if a.agent != nil {
		a.agent.Close()
	}
}

func (a *authPlan) failure() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

type recordingSigner struct {
	ssh.Signer
	plan *authPlan
}

func (s recordingSigner) note(err error) error {
	if err != nil {
		s.plan.errMu.Lock()
		if s.plan.err == nil {
			s.plan.err = err
		}
		s.plan.errMu.Unlock()
	}
	return err
}

func (s recordingSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	sig, err := s.Signer.Sign(r, data)
	return sig, s.note(err)
}

func (s recordingSigner) SignWithAlgorithm(r io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	as, ok := s.Signer.(ssh.AlgorithmSigner)
	if !ok {
		return s.Sign(r, data)
	}
	sig, err := as.SignWithAlgorithm(r, data, algorithm)
	return sig, s.note(err)
}

func (s recordingSigner) Algorithms() []string {
	if ms, ok := s.Signer.(ssh.MultiAlgorithmSigner); ok {
		return ms.Algorithms()
	}
	if s.Signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{s.Signer.PublicKey().Type()}
}

// authFor prepares the keys for t. A missing or unreadable explicit
// identity file is an error before anything is dialled.
func (ks *keyStore) authFor(t *Target) (*authPlan, error) {
	a := &authPlan{}
	have := map[string]bool{}
	if sock := env.Get(ks.environ(), "SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			signers, err := agent.NewClient(c).Signers()
			if err == nil {
				a.agent = c
				for _, s := range signers {
					have[string(s.PublicKey().Marshal())] = true
					a.signers = append(a.signers, recordingSigner{Signer: s, plan: a})
				}
				if len(signers) > 0 {
					a.offered = append(a.offered, fmt.Sprintf("%d ssh-agent key(s)", len(signers)))
				}
			} else {
				c.Close()
			}
		}
	}
	for _, id := range t.identities {
		k, err := ks.load(id.path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				if id.explicit {
					a.close()
					return nil, fmt.Errorf("identity file %s does not exist", id.path)
				}
				continue
			}
			if id.explicit {
				a.close()
				if strings.HasPrefix(err.Error(), "identity file") {
					return nil, err
				}
				return nil, fmt.Errorf("identity file %s: %s", id.path, msg.OneLine(err.Error()))
			}
			continue
		}
		if have[string(k.pub.Marshal())] {
			continue
		}
		have[string(k.pub.Marshal())] = true
		var s ssh.Signer = lazySigner{k: k}
		if k.signer != nil {
			s = k.signer
		}
		a.signers = append(a.signers, recordingSigner{Signer: s, plan: a})
		a.offered = append(a.offered, id.path)
	}
	return a, nil
}

func (ks *keyStore) environ() []string {
	if ks.opts.Environ != nil {
		return ks.opts.Environ
	}
	return os.Environ()
}

// authError explains a rejected authentication.
func authError(t *Target, a *authPlan) error {
	if len(a.offered) == 0 {
		return fmt.Errorf("no SSH key to authenticate as %s@%s: no ssh-agent keys (SSH_AUTH_SOCK) and no identity file found; set identity_file for the node", t.user, t.addr())
	}
	return fmt.Errorf("authentication as %s@%s failed (offered %s): check the node's user and identity_file", t.user, t.addr(), strings.Join(a.offered, ", "))
}

// isEOFLike reports a connection closed by the peer.
func isEOFLike(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "EOF")
}
