package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/internal/sshdtest"
)

// The lock relies on the engine's VolumeCreate returning an existing volume
// with its own labels. Verified here under contention: 32 concurrent
// creators per name, 20 names; every caller must see the same, complete
// label set of one creator.
func TestLocalEngineCreateVolumeAtomic(t *testing.T) {
	sshdtest.HaveDocker(t)
	ctx := context.Background()
	n, err := NewLocal(ctx, "local", "/var/run/docker.sock", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b := make([]byte, 4)
	rand.Read(b)
	prefix := "berth-atomic-" + hex.EncodeToString(b)
	for round := 0; round < 20; round++ {
		name := fmt.Sprintf("%s-%d", prefix, round)
		var wg sync.WaitGroup
		holders := make([]string, 32)
		errs := make([]error, 32)
		for i := range holders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := n.CreateVolume(ctx, name, map[string]string{"holder": fmt.Sprint(i), "check": fmt.Sprint(i * 7)})
				errs[i] = err
				if v.Labels["check"] != fmt.Sprint(atoi(v.Labels["holder"])*7) {
					errs[i] = fmt.Errorf("mixed labels %v", v.Labels)
				}
				holders[i] = v.Labels["holder"]
			}()
		}
		wg.Wait()
		if err := n.RemoveVolume(ctx, name); err != nil {
			t.Error(err)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("creator %d: %v", i, err)
			}
		}
		for _, h := range holders[1:] {
			if h != holders[0] {
				t.Fatalf("round %d: creators saw different holders: %s", round, strings.Join(holders, ","))
			}
		}
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

func TestLocalSocket(t *testing.T) {
	for _, c := range []struct {
		socket, dockerHost, want string
		err                      bool
	}{
		{"", "", "/var/run/docker.sock", false},
		{"/var/run/docker.sock", "unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock", false},
		{"/srv/docker.sock", "unix:///run/user/1000/docker.sock", "/srv/docker.sock", false},
		{"", "tcp://10.0.0.1:2376", "", true},
	} {
		env := []string{}
		if c.dockerHost != "" {
			env = append(env, "DOCKER_HOST="+c.dockerHost)
		}
		got, err := LocalSocket(&config.Node{Name: "l", Address: "local", DockerSocket: c.socket}, env)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%+v: got %q %v", c, got, err)
		}
	}
}
