package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/build"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// layeredEngine is a local engine holding one image, saved in the legacy
// layout (legacySave).
type layeredEngine struct {
	img     planner.Image
	archive []byte
}

func (e *layeredEngine) Images(context.Context) ([]planner.Image, error) {
	return []planner.Image{e.img}, nil
}
func (e *layeredEngine) InspectImage(context.Context, string) (planner.Image, error) {
	return e.img, nil
}
func (e *layeredEngine) BuildImage(context.Context, io.Reader, build.ImageBuildOptions, func(string)) (string, error) {
	return "", errors.New("no builds here")
}
func (e *layeredEngine) SaveImage(context.Context, string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(e.archive)), nil
}
func (e *layeredEngine) TagImage(context.Context, string, string) error { return nil }
func (e *layeredEngine) RemoveImage(context.Context, string) error      { return nil }
func (e *layeredEngine) Close() error                                   { return nil }

// layerHolder is a node that holds the layer chains of held (by diff IDs)
// and loads as Docker 20.10 does: a layer.tar the manifest names may be
// missing only where the node has the layer's chain. claims are layers it
// says it holds without holding them (one pruned between the list and the
// load).
type layerHolder struct {
	held   [][]string
	claims [][]string
	layers []string // the image's diff IDs, to map the manifest's paths

	mu     sync.Mutex
	loads  int
	loaded bool
}

func (n *layerHolder) Images(context.Context) ([]planner.Image, error) { return nil, nil }
func (n *layerHolder) PullImage(context.Context, string, string) error { return errors.New("no pulls") }
func (n *layerHolder) ImageLayers(context.Context) ([]planner.Image, error) {
	var out []planner.Image
	for i, l := range append(append([][]string{}, n.held...), n.claims...) {
		out = append(out, planner.Image{ID: fmt.Sprintf("sha256:%d", i), Layers: l})
	}
	return out, nil
}

func (n *layerHolder) LoadImage(ctx context.Context, r io.Reader) error {
	n.mu.Lock()
	n.loads++
	n.mu.Unlock()
	files := map[string]bool{}
	var manifest []struct{ Layers []string }
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		files[h.Name] = true
		if h.Name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				return err
			}
		}
	}
	if len(manifest) != 1 {
		return errors.New("no manifest")
	}
	has := sharedLayersOf(n.layers, n.held)
	for i, p := range manifest[0].Layers {
		if !files[p] && i >= has {
			return fmt.Errorf("open /var/lib/docker/tmp/docker-import-1/%s: no such file or directory", p)
		}
	}
	n.mu.Lock()
	n.loaded = true
	n.mu.Unlock()
	return nil
}

// sharedLayersOf is planner.SharedLayers over bare layer lists.
func sharedLayersOf(layers []string, held [][]string) int {
	var imgs []planner.Image
	for _, l := range held {
		imgs = append(imgs, planner.Image{Layers: l})
	}
	return planner.SharedLayers(layers, imgs)
}

func TestSendOnlyTheLayersANodeLacks(t *testing.T) {
	base := tarOf(t, []string{"big"}, map[string][]byte{"big": bigLayer(2 << 20)})
	top := tarOf(t, []string{"small"}, map[string][]byte{"small": []byte("v2")})
	archive, diffIDs, _ := legacySave(t, [][]byte{base, top})
	eng := &layeredEngine{img: planner.Image{ID: "sha256:v2", Size: int64(len(base)), Tags: []string{"app:2"}, Layers: diffIDs}, archive: archive}
	v1 := []string{diffIDs[0], "sha256:oldtop"}

	run := func(t *testing.T, opts Options) (map[string]*layerHolder, *Step, string, []Event) {
		nodes := map[string]*layerHolder{
			"node1": {held: [][]string{v1}, layers: diffIDs},                   // holds the base
			"node2": {layers: diffIDs},                                         // holds nothing
			"node3": {claims: [][]string{v1}, layers: diffIDs},                 // says it holds the base, but does not
			"node4": {held: [][]string{append(diffIDs, "x")}, layers: diffIDs}, // holds every layer
		}
		var progress strings.Builder
		var mu sync.Mutex
		var events []Event
		opts.Progress = &progress
		opts.Event = func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
		opts.Local = func(context.Context) (LocalEngine, error) { return eng, nil }
		st := NewStep(&config.Config{Project: config.Project{Name: "demo"}}, func(name string) (Node, error) { return nodes[name], nil }, opts)
		p := &planner.Plan{Images: []planner.ImageAction{{Kind: planner.ImageSend, Image: "app:2", Nodes: []string{"node1", "node2", "node3", "node4"}}}}
		if err := st.Run(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		for name, n := range nodes {
			if !n.loaded {
				t.Errorf("%s did not load the image", name)
			}
		}
		return nodes, st, progress.String(), events
	}

	nodes, st, progress, events := run(t, Options{})
	sent := st.BytesSent()
	whole := int64(len(archive))
	if sent["node2"] != whole {
		t.Errorf("node2 (holds nothing) got %d bytes, want the whole %d", sent["node2"], whole)
	}
	for _, n := range []string{"node1", "node4"} {
		if sent[n] > 100<<10 {
			t.Errorf("%s (holds the base) got %d bytes of %d", n, sent[n], whole)
		}
		if nodes[n].loads != 1 {
			t.Errorf("%s: %d loads", n, nodes[n].loads)
		}
	}
	// node3 refused the partial archive, and got the whole image after.
	if nodes["node3"].loads != 2 || sent["node3"] < whole {
		t.Errorf("node3: %d loads, %d bytes; want the partial, then the whole image", nodes["node3"].loads, sent["node3"])
	}
	if !strings.Contains(progress, "node node3 refused app:2 without the 1 layers it holds (open /var/lib/docker/tmp/docker-import-1/") ||
		!strings.Contains(progress, "sending the whole image") {
		t.Errorf("progress does not say node3 fell back to the whole image:\n%s", progress)
	}
	if !strings.Contains(progress, "node1 (1 of 2 layers)") || !strings.Contains(progress, "node4 (0 of 2 layers)") {
		t.Errorf("progress does not say what each node gets:\n%s", progress)
	}
	var saw []string
	for _, e := range events {
		saw = append(saw, e.Node+": "+e.Message)
	}
	joined := strings.Join(saw, "\n")
	for _, want := range []string{"node1: sent app:2 to node node1: ", "(1 of 2 layers, it held the others)", "node2: sent app:2 to node node2: ", "(the whole image)",
		"(the whole image) in", "after the partial load was refused"} {
		if !strings.Contains(joined, want) {
			t.Errorf("events lack %q:\n%s", want, joined)
		}
	}

	// WholeImages: the old way, the whole image everywhere.
	_, st, _, _ = run(t, Options{WholeImages: true})
	for n, b := range st.BytesSent() {
		if b != whole {
			t.Errorf("WholeImages: %s got %d bytes, want %d", n, b, whole)
		}
	}
}
