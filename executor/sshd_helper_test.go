package executor

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/executor/internal/sshdtest"
	"github.com/berth-dev/berth/executor/transport"
)

// sshdOptions are Options for tests over s: its home, no ssh config, no
// agent, no terminal.
func sshdOptions(s *sshdtest.SSHD) Options {
	return Options{SSH: transport.Options{
		HomeDir:       s.Home,
		SSHConfigPath: filepath.Join(s.Home, "no-ssh-config"),
		Environ:       []string{"USER=root"},
		NoTTY:         true,
		Stderr:        &bytes.Buffer{},
	}}
}

// NewSSHDNodeForTest starts a throwaway sshd and returns a Node connected
// through it to this machine's Docker engine (for the external suite test).
func NewSSHDNodeForTest(t *testing.T) Node {
	sshdtest.HaveDocker(t)
	s := sshdtest.Start(t)
	sess := Open(context.Background(), sshdtest.Config("p", s.Node("sshd")), sshdOptions(s))
	t.Cleanup(func() { sess.Close() })
	n, err := sess.Node("sshd")
	if err != nil {
		t.Fatal(err)
	}
	return n
}
