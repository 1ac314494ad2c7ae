package executor

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/berth-dev/berth/executor/internal/sshdtest"
	"github.com/berth-dev/berth/executor/transport"
)

func pubKey(t *testing.T) ssh.PublicKey {
	k, err := ssh.NewPublicKey(sshdtest.NewEd25519(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// HostKeyMismatches lists the nodes whose key did not match (also through a
// jump host), not the unknown or unreachable ones.
func TestSessionHostKeyMismatches(t *testing.T) {
	k := pubKey(t)
	s := NewSession("p", nil)
	s.names = []string{"changed", "down", "jumped", "ok", "pinned", "unknown"}
	s.errs = map[string]error{
		"changed": &NodeError{Node: "changed", Err: &transport.HostKeyError{Host: "a", Offered: k, KnownFile: "kh", KnownLine: 2, KnownKey: k}},
		"down":    &NodeError{Node: "down", Err: errors.New("connect to b:22: connection refused")},
		"jumped":  &NodeError{Node: "jumped", Err: fmt.Errorf("jump host j: %w", &transport.HostKeyError{Host: "j", Offered: k, Revoked: true})},
		"pinned":  &NodeError{Node: "pinned", Err: &transport.HostKeyError{Host: "c", Offered: k, Pinned: "SHA256:x"}},
		"unknown": &NodeError{Node: "unknown", Err: &transport.HostKeyError{Host: "d", Offered: k, Unknown: true}},
	}
	var got []string
	for _, err := range s.HostKeyMismatches() {
		got = append(got, strings.SplitN(err.Error(), ":", 2)[0])
	}
	if want := []string{"changed", "jumped", "pinned"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("mismatches %v, want %v", got, want)
	}
}

// Reads go wider than changes by default; a Parallelism set by the caller
// (an explicit -parallelism) bounds both.
func TestOptionsReadParallelism(t *testing.T) {
	for _, tt := range []struct {
		in           Options
		par, readPar int
	}{
		{Options{}, DefaultParallelism, DefaultReadParallelism},
		{Options{Parallelism: 5}, 5, 5},
		{Options{Parallelism: 100}, 100, 100},
		{Options{ReadParallelism: 50}, DefaultParallelism, 50},
	} {
		o := tt.in.withDefaults()
		if o.Parallelism != tt.par || o.ReadParallelism != tt.readPar {
			t.Errorf("%+v: parallelism %d, read %d; want %d and %d", tt.in, o.Parallelism, o.ReadParallelism, tt.par, tt.readPar)
		}
	}
}
