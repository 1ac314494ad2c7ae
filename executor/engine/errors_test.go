package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errtext"
	"github.com/berth-dev/berth/planner"
)

// dockerErrors serves the Engine API on a unix socket and answers every
// request but the ping with the error Docker gives for it.
func dockerErrors(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fail := func(w http.ResponseWriter, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"message": msg})
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasSuffix(p, "/_ping"):
			w.Header().Set("Api-Version", "1.41")
			w.Write([]byte("OK"))
		case strings.HasSuffix(p, "/containers/create"):
			name := r.URL.Query().Get("name")
			fail(w, http.StatusConflict, `Conflict. The container name "/`+name+`" is already in use by container "3f2a9c0d1e2b". You have to remove (or rename) that container to be able to reuse that name.`)
		case strings.HasSuffix(p, "/start"):
			fail(w, http.StatusInternalServerError, `driver failed programming external connectivity on endpoint brk-web-1: Bind for 0.0.0.0:8080 failed: port is already allocated`)
		case strings.HasSuffix(p, "/volumes/create"):
			fail(w, http.StatusInternalServerError, `create data: error while creating volume root path '/var/lib/docker/volumes/data': no space left on device`)
		case strings.Contains(p, "/volumes/"):
			fail(w, http.StatusConflict, `remove data: volume is in use - [3f2a9c0d1e2b]`)
		case strings.Contains(p, "/containers/"):
			fail(w, http.StatusNotFound, `No such container: 3f2a9c0d1e2b`)
		default:
			fail(w, http.StatusInternalServerError, "unexpected "+r.Method+" "+p)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// The engine node's errors for Docker's own error answers name the
// operation and its object once, then give Docker's message on one line.
func TestEngineErrorsNameTheOperationOnce(t *testing.T) {
	ctx := context.Background()
	n, err := NewLocal(ctx, "node1", dockerErrors(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	spec := &planner.ContainerSpec{Name: "brk-web-1", Image: "nginx:1.25", Labels: map[string]string{}}
	_, errCreate := n.CreateContainer(ctx, "brk-web-1", spec)
	_, errVolume := n.CreateVolume(ctx, "data", nil)
	_, errInspect := n.Inspect(ctx, "3f2a9c0d1e2b")
	for _, c := range []struct {
		err      error
		want     string
		notFound bool
	}{
		{errCreate, `create container brk-web-1: Error response from daemon: Conflict. The container name "/brk-web-1" is already in use by container "3f2a9c0d1e2b". You have to remove (or rename) that container to be able to reuse that name.`, false},
		{n.StartContainer(ctx, "3f2a9c0d1e2b"), `start container 3f2a9c0d1e2b: Error response from daemon: driver failed programming external connectivity on endpoint brk-web-1: Bind for 0.0.0.0:8080 failed: port is already allocated`, false},
		{errVolume, `create volume data: Error response from daemon: create data: error while creating volume root path '/var/lib/docker/volumes/data': no space left on device`, false},
		{n.RemoveVolume(ctx, "data"), `remove volume data: Error response from daemon: remove data: volume is in use - [3f2a9c0d1e2b]`, false},
		{errInspect, `inspect container 3f2a9c0d1e2b: not found: Error response from daemon: No such container: 3f2a9c0d1e2b`, true},
		{n.StopContainer(ctx, "3f2a9c0d1e2b", time.Second), `stop container 3f2a9c0d1e2b: not found: Error response from daemon: No such container: 3f2a9c0d1e2b`, true},
	} {
		if c.err == nil {
			t.Errorf("no error; want %s", c.want)
			continue
		}
		if got := c.err.Error(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
		if errors.Is(c.err, ErrNotFound) != c.notFound {
			t.Errorf("%v: errors.Is(ErrNotFound) = %v", c.err, !c.notFound)
		}
		if r := errtext.RepeatedAtJoin(c.err.Error()); r != "" {
			t.Errorf("repeated context at %q in %v", r, c.err)
		}
	}
}
