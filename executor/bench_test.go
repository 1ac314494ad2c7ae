package executor

import (
	"context"
	"os/exec"
	"strconv"
	"testing"

	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/internal/sshdtest"
)

// Benchmarks against a throwaway sshd on 127.0.0.1 in front of this
// machine's engine. The three-node figures against the test cluster are in
// e2e_test.go (BenchmarkCluster: gather-3-nodes and the api-call cases). Run:
//
//	go test ./executor -run '^$' -bench . -benchtime 20x

// BenchmarkLocalSSHDAPICall measures one Docker API call (GET /_ping)
// over one SSH connection: on a kept-alive channel, and on a fresh
// direct-streamlocal channel per call, with and without TCP_QUICKACK.
func BenchmarkLocalSSHDAPICall(b *testing.B) {
	sshdtest.HaveDocker(b)
	s := sshdtest.Start(b)
	for _, c := range []struct {
		name              string
		noQuickAck, fresh bool
		once              bool
	}{
		{"fresh-channel/quickack-set-once", false, true, true},
		{"keepalive/quickack", false, false, false},
		{"keepalive/no-quickack", true, false, false},
		{"fresh-channel/quickack", false, true, false},
		{"fresh-channel/no-quickack", true, true, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := sshdOptions(s)
			opts.SSH.NoQuickAck = c.noQuickAck
			opts.SSH.QuickAckOnce = c.once
			sess := Open(context.Background(), sshdtest.Config("p", s.Node("n1")), opts)
			defer sess.Close()
			n, err := sess.Node("n1")
			if err != nil {
				b.Fatal(err)
			}
			d := n.(*engine.Node)
			d.HTTPTransport().DisableKeepAlives = c.fresh
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := d.Ping(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLocalEngineAPICall is the same call on the local socket, for
// comparison.
func BenchmarkLocalEngineAPICall(b *testing.B) {
	sshdtest.HaveDocker(b)
	n, err := engine.NewLocal(context.Background(), "local", "/var/run/docker.sock", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	d := n
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.Ping(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalSSHDGather is a fresh Open+Gather+Close of one node per
// iteration, next to OpenSSH's fresh `ssh -i KEY host true`. Both run one
// command through the remote login shell (berth's reads /proc/net for host
// ports), so both pay its start-up: on this machine root's ~/.bashrc runs
// `pyenv init` (~150 ms). The "light-shell" variants set SHLVL=1 in sshd's
// environment (SetEnv), which makes bash skip ~/.bashrc, as a stock
// Debian ~/.bashrc does for non-interactive shells.
func BenchmarkLocalSSHDGather(b *testing.B) {
	sshdtest.HaveDocker(b)
	for _, shell := range []struct {
		name  string
		extra []string
	}{
		{"bashrc", nil},
		{"light-shell", []string{"SetEnv SHLVL=1"}},
	} {
		s := sshdtest.Start(b, shell.extra...)
		b.Run(shell.name+"/berth-open-gather-close", func(b *testing.B) {
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				sess := Open(ctx, sshdtest.Config("p", s.Node("n1")), sshdOptions(s))
				live := sess.Gather(ctx)
				sess.Close()
				if st := live.Nodes["n1"]; !st.Reachable {
					b.Fatal(st.Error)
				}
			}
		})
		b.Run(shell.name+"/openssh-ssh-true", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				// A fresh connection whatever ~/.ssh/config says.
				out, err := exec.Command("ssh", "-F", "/dev/null", "-i", s.ClientKey, "-o", "IdentitiesOnly=yes",
					"-o", "UserKnownHostsFile="+s.KnownHosts, "-o", "StrictHostKeyChecking=yes",
					"-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "BatchMode=yes",
					"-p", strconv.Itoa(s.Port), "root@127.0.0.1", "true").CombinedOutput()
				if err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
		s.Stop()
	}
}
