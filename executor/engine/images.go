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

// localEngine is the Docker engine of the machine running berth: images are
// built there and sent from there. *dockerNode implements it; unit tests use
// a fake.
type localEngine interface {
	Images(ctx context.Context) ([]planner.Image, error)
	// inspectImage returns the image ref names (its ID, size and tags), or
	// an error wrapping ErrNotFound.
	inspectImage(ctx context.Context, ref string) (planner.Image, error)
	// buildImage builds the context tarball and returns the image's ID;
	// line receives the build's output, line by line.
	buildImage(ctx context.Context, context io.Reader, opts build.ImageBuildOptions, line func(string)) (string, error)
	// saveImage streams `docker save ref`.
	saveImage(ctx context.Context, ref string) (io.ReadCloser, error)
	imageTagger
	removeImage(ctx context.Context, ref string) error
	Close() error
}

// imageTagger is a node that can give an image it holds another name, so
// that a node holding the exact image under another tag receives nothing.
type imageTagger interface {
	tagImage(ctx context.Context, id, ref string) error
}

var (
	_ localEngine = (*dockerNode)(nil)
	_ imageTagger = (*dockerNode)(nil)
)

func (d *dockerNode) inspectImage(ctx context.Context, ref string) (planner.Image, error) {
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

// buildImage has no request deadline (a build may take long); ctx bounds it.
func (d *dockerNode) buildImage(ctx context.Context, tarball io.Reader, opts build.ImageBuildOptions, line func(string)) (string, error) {
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

// saveImage has no request deadline (the stream may take long); ctx bounds
// it.
func (d *dockerNode) saveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, err := d.cli.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, d.wrap("save image "+ref, err)
	}
	return rc, nil
}

func (d *dockerNode) tagImage(ctx context.Context, id, ref string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.wrap(fmt.Sprintf("tag image %s as %s", shortImageID(id), ref), d.cli.ImageTag(ctx, id, ref))
}

func (d *dockerNode) removeImage(ctx context.Context, ref string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	_, err := d.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	return d.wrap("remove image "+ref, err)
}

// shortImageID is "sha256:" and 12 hex digits of an image ID.
func shortImageID(id string) string {
	hex := strings.TrimPrefix(id, "sha256:")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return "sha256:" + hex
}
