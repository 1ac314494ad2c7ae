package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"

	"github.com/berth-dev/berth/planner"
)

// InspectImage returns the image ref names (its ID, size and tags), or an
// error wrapping ErrNotFound.
func (d *Node) InspectImage(ctx context.Context, ref string) (planner.Image, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	r, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return planner.Image{}, d.wrap("inspect image "+ref, err)
	}
	img := planner.Image{ID: r.ID, Size: r.Size}
	if r.RootFS.Type == "layers" {
		img.Layers = r.RootFS.Layers
	}
	for _, t := range r.RepoTags {
		if t != "<none>:<none>" {
			img.Tags = append(img.Tags, t)
		}
	}
	return img, nil
}

// BuildImage has no request deadline (a build may take long); ctx bounds it.
func (d *Node) BuildImage(ctx context.Context, tarball io.Reader, opts build.ImageBuildOptions, line func(string)) (string, error) {
	resp, err := d.cli.ImageBuild(ctx, tarball, opts)
	if err != nil {
		return "", d.wrap("build image", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var id string
	var last []string // the output's last lines, for the error
	for {
		var m buildMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return "", d.wrap("build image", err)
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			if len(last) > 0 {
				msg += "\n  last build output:\n    | " + strings.Join(last, "\n    | ")
			}
			return "", errors.New("build image: " + strings.TrimSpace(msg))
		}
		if len(m.Aux) > 0 {
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
		for _, l := range strings.Split(strings.TrimRight(m.Stream, "\n"), "\n") {
			l = strings.TrimRight(l, "\r ")
			if l == "" {
				continue
			}
			last = append(last, l)
			if len(last) > 10 {
				last = last[1:]
			}
			if line != nil {
				line(l)
			}
		}
	}
	if id == "" {
		return "", errors.New("build image: the engine did not report the built image's ID")
	}
	return id, nil
}

// SaveImage has no request deadline (the stream may take long); ctx bounds
// it.
func (d *Node) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, err := d.cli.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, d.wrap("save image "+ref, err)
	}
	return rc, nil
}

// TagImage gives the image id another name, ref.
func (d *Node) TagImage(ctx context.Context, id, ref string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap(fmt.Sprintf("tag image %s as %s", planner.ShortID(id), ref), d.cli.ImageTag(ctx, id, ref))
}

// RemoveImage removes ref and its untagged parents.
func (d *Node) RemoveImage(ctx context.Context, ref string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	_, err := d.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	return d.wrap("remove image "+ref, err)
}

// buildMessage is one line of the engine's build output stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// ImageLayers returns the engine's images (as Images does) with their
// layers: one inspect per image, a few at a time. An image removed between
// the list and its inspect is left out.
func (d *Node) ImageLayers(ctx context.Context) ([]planner.Image, error) {
	imgs, err := d.Images(ctx)
	if err != nil {
		return nil, err
	}
	gone := make([]bool, len(imgs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range imgs {
		g.Go(func() error {
			img, err := d.InspectImage(gctx, imgs[i].ID)
			if errors.Is(err, ErrNotFound) {
				gone[i] = true
				return nil
			}
			imgs[i].Layers = img.Layers
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := imgs[:0]
	for i, img := range imgs {
		if !gone[i] {
			out = append(out, img)
		}
	}
	return out, nil
}

// LayerSizes returns the content size of each of ref's layers (base
// first), from the image's history, or nil when the history cannot be
// matched to the layers.
func (d *Node) LayerSizes(ctx context.Context, ref string, layers int) ([]int64, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	h, err := d.cli.ImageHistory(ctx, ref)
	if err != nil {
		return nil, d.wrap("image history of "+ref, err)
	}
	sizes := make([]int64, len(h))
	for i, e := range h {
		sizes[len(h)-1-i] = e.Size // the history is newest first
	}
	return MatchLayerSizes(sizes, layers), nil
}

// MatchLayerSizes maps an image's history entry sizes (oldest first) to its
// layers. The history has an entry per build step; steps that made no layer
// (ENV, LABEL...) have size 0, and so may a real layer (a mkdir): the
// entries of non-zero size are layers for sure, and the zero ones fill in
// only when the counts leave no doubt. Nil when they do not.
func MatchLayerSizes(history []int64, layers int) []int64 {
	var nonzero []int64
	for _, s := range history {
		if s > 0 {
			nonzero = append(nonzero, s)
		}
	}
	switch {
	case len(history) == layers:
		return history
	case len(nonzero) == layers:
		return nonzero
	}
	return nil
}
