package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

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
