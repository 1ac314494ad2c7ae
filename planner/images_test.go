package planner

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

func imageWork(p *Plan) []string {
	var out []string
	for _, ia := range p.Images {
		out = append(out, fmt.Sprintf("%s %s [%s] %s", ia.Kind, ia.Image, strings.Join(ia.Nodes, ","), strings.Join(ia.Services, ",")))
	}
	return out
}

func builtService(name string) *config.Service {
	s := svc(name, "", 3)
	s.Build = &config.Build{Context: "/src/" + name, Dockerfile: "Dockerfile"}
	return s
}

func TestPlanImages(t *testing.T) {
	nodes := threeNodes()
	const ref = "berth/demo-web:0123456789ab"
	built := Options{BuildImages: map[string]string{"web": ref}}
	withTag := func(l *Live, node, id, tag string) *Live {
		l.Nodes[node].Images = append(l.Nodes[node].Images, Image{ID: id, Tags: []string{tag}})
		return l
	}
	cases := []struct {
		name     string
		services []*config.Service
		live     *Live
		opts     Options
		want     []string
	}{
		{
			name:     "build then send to the nodes that run it",
			services: []*config.Service{builtService("web")},
			live:     liveFor(nodes),
			opts:     built,
			want:     []string{"build " + ref + " [] web", "send " + ref + " [node1,node2,node3] web"},
		},
		{
			name:     "the nodes hold the build: nothing to build even if the local engine lacks it",
			services: []*config.Service{builtService("web")},
			live:     withTag(withTag(withTag(liveFor(nodes), "node1", "sha256:b", ref), "node2", "sha256:b", ref), "node3", "sha256:b", ref),
			opts:     built,
			want:     nil,
		},
		{
			name:     "built locally already: only sends, to the nodes lacking it",
			services: []*config.Service{builtService("web")},
			live:     withTag(liveFor(nodes), "node2", "sha256:b", ref),
			opts:     Options{BuildImages: built.BuildImages, LocalImages: []Image{{ID: "sha256:b", Tags: []string{ref}, Size: 5e6}}},
			want:     []string{"send " + ref + " [node1,node3] web"},
		},
		{
			name: "pull = always does not apply to a built image",
			services: func() []*config.Service {
				s := builtService("web")
				s.Pull = "always"
				return []*config.Service{s}
			}(),
			live: withTag(withTag(withTag(liveFor(nodes), "node1", "sha256:b", ref), "node2", "sha256:b", ref), "node3", "sha256:b", ref),
			opts: built,
			want: nil,
		},
		{
			name:     "two services, one image: one pull",
			services: []*config.Service{svc("a", "redis", 1), svc("b", "redis:latest", 1)},
			live:     liveFor(nodes[:1]),
			opts:     Options{},
			want:     []string{"pull redis [node1] a,b"},
		},
		{
			name:     "the local engine's node gets the build without a send",
			services: []*config.Service{builtService("web")},
			live: func() *Live {
				l := liveFor(nodes)
				l.Nodes["node2"].Engine.ID = "LOCAL"
				return l
			}(),
			opts: Options{BuildImages: built.BuildImages, LocalEngineID: "LOCAL"},
			want: []string{"build " + ref + " [node2] web", "send " + ref + " [node1,node3] web"},
		},
		{
			name:     "destroy needs no image",
			services: []*config.Service{builtService("web")},
			live:     liveFor(nodes),
			opts:     Options{BuildImages: built.BuildImages, Destroy: true},
			want:     nil,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := nodes
			if len(c.live.Nodes) < len(nodes) {
				n = nodes[:len(c.live.Nodes)]
			}
			cfg := &config.Config{Project: config.Project{Name: "demo"}, Nodes: n, Services: c.services}
			p, diags := Make(cfg, c.live, c.opts)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if got := imageWork(p); !slices.Equal(got, c.want) {
				t.Errorf("image work\n  %q\nwant\n  %q", got, c.want)
			}
			// Image work comes before container work, and a simulated
			// apply converges.
			if next, _ := Make(cfg, Simulate(c.live, p), Options{BuildImages: c.opts.BuildImages, LocalImages: c.opts.LocalImages,
				LocalEngineID: c.opts.LocalEngineID, Destroy: c.opts.Destroy}); len(next.Images) > 0 || (!c.opts.Destroy && len(next.Actions) > 0) {
				t.Errorf("not converged: %q", imageWork(next))
			}
		})
	}
}

func TestTransferSharedPrefixOnly(t *testing.T) {
	img := Image{ID: "sha256:new", Size: 1000, Layers: []string{"a", "b", "c"}, LayerSizes: []int64{900, 0, 100}}
	cases := []struct {
		name string
		held []Image
		want ImageTransfer
	}{
		{"nothing held", nil, ImageTransfer{Node: "n", Path: PathWhole, Layers: 3, Of: 3, Bytes: 1000}},
		{"the base held", []Image{{Layers: []string{"a", "x"}}}, ImageTransfer{Node: "n", Path: PathLayers, Layers: 2, Of: 3, Bytes: 100 + archiveOverhead + 3*layerEntryOverhead + 2*layerTarOverhead}},
		{"the longest prefix wins", []Image{{Layers: []string{"a"}}, {Layers: []string{"a", "b", "d"}}}, ImageTransfer{Node: "n", Path: PathLayers, Layers: 1, Of: 3, Bytes: 100 + archiveOverhead + 3*layerEntryOverhead + layerTarOverhead}},
		{"every layer held", []Image{{Layers: []string{"a", "b", "c", "d"}}}, ImageTransfer{Node: "n", Path: PathLayers, Layers: 0, Of: 3, Bytes: archiveOverhead + 3*layerEntryOverhead}},
		{"the same diff on another base is another layer", []Image{{Layers: []string{"x", "b", "c"}}}, ImageTransfer{Node: "n", Path: PathWhole, Layers: 3, Of: 3, Bytes: 1000}},
	}
	for _, c := range cases {
		if got := Transfer("n", img, c.held); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	// Layers not known: the whole image.
	if got := Transfer("n", Image{ID: "x", Size: 5}, []Image{{Layers: []string{"a"}}}); got.Path != PathWhole || got.Bytes != 5 {
		t.Errorf("unknown layers: %+v", got)
	}
	// Sizes not known: the layer count, no bytes.
	if got := Transfer("n", Image{Layers: []string{"a", "b"}}, []Image{{Layers: []string{"a"}}}); got.Path != PathLayers || got.Layers != 1 || got.Bytes != 0 {
		t.Errorf("unknown sizes: %+v", got)
	}
}
