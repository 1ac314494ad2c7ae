package engine

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/executor/internal/sshdtest"
)

// Info reads GET /info only when it names the architecture for sure, and
// then says what GET /version would: checked against the local engine.
func TestInfoMatchesVersion(t *testing.T) {
	sshdtest.HaveDocker(t)
	ctx := context.Background()
	n, err := NewLocal(ctx, "local", "/var/run/docker.sock", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	f, err := n.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := n.cli.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != v.Version || f.APIVersion != v.APIVersion || f.OS != v.Os || f.Arch != v.Arch {
		t.Fatalf("Info says %s API %s %s/%s, GET /version %s API %s %s/%s",
			f.Version, f.APIVersion, f.OS, f.Arch, v.Version, v.APIVersion, v.Os, v.Arch)
	}
}

// fakeEngine serves /_ping, /info and /version on a unix socket, counting
// the requests by path.
func fakeEngine(t *testing.T, arch, versionArch string) (socket string, calls func(string) int) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	count := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path[strings.LastIndex(r.URL.Path, "/"):]
		mu.Lock()
		count[p]++
		mu.Unlock()
		w.Header().Set("API-Version", "1.41")
		w.Header().Set("OSType", "linux")
		switch p {
		case "/_ping":
			w.Write([]byte("OK"))
		case "/info":
			json.NewEncoder(w).Encode(map[string]any{"ID": "E1", "Name": "n1", "NCPU": 2, "MemTotal": 1 << 30,
				"Architecture": arch, "OSType": "linux", "ServerVersion": "20.10.24"})
		case "/version":
			json.NewEncoder(w).Encode(map[string]any{"Version": "20.10.24", "ApiVersion": "1.41", "Os": "linux", "Arch": versionArch})
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return socket, func(p string) int { mu.Lock(); defer mu.Unlock(); return count[p] }
}

// An engine on x86_64 is not asked for GET /version; on another
// architecture (here an aarch64 kernel running a 32-bit arm engine) the
// architecture comes from /version.
func TestInfoAsksVersionOnlyWhenNeeded(t *testing.T) {
	for _, c := range []struct {
		arch, versionArch, want string
		versionCalls            int
	}{
		{"x86_64", "amd64", "amd64", 0},
		{"aarch64", "arm", "arm", 1},
	} {
		socket, calls := fakeEngine(t, c.arch, c.versionArch)
		n, err := NewLocal(context.Background(), "n1", socket, 0)
		if err != nil {
			t.Fatal(err)
		}
		f, err := n.Info(context.Background())
		n.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Arch != c.want || f.APIVersion != "1.41" || f.OS != "linux" || f.Version != "20.10.24" || f.ID != "E1" || f.CPUs != 2 {
			t.Errorf("%s: facts %+v", c.arch, f)
		}
		if got := calls("/version"); got != c.versionCalls {
			t.Errorf("%s: GET /version %d times, want %d", c.arch, got, c.versionCalls)
		}
	}
}
