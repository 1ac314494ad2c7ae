package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth-dev/berth/config"
)

// outsideDockerfile is the name a Dockerfile from outside the build context
// gets in the context's tarball.
const outsideDockerfile = ".berth.Dockerfile"

// buildContext is a build's context directory as Docker's CLI would send it:
// every file that .dockerignore does not exclude (the Dockerfile and
// .dockerignore themselves are always sent).
type buildContext struct {
	dir        string
	dockerfile string // path of the Dockerfile in the tarball (slash-separated)
	outside    string // absolute path of a Dockerfile outside dir, or ""
	excludes   []string
}

func newBuildContext(b *config.Build) (*buildContext, error) {
	fi, err := os.Stat(b.Context)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", b.Context)
	}
	bc := &buildContext{dir: b.Context}
	df := b.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	abs := df
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(b.Context, df)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("dockerfile: %w", err)
	}
	rel, err := filepath.Rel(b.Context, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		bc.outside, bc.dockerfile = abs, outsideDockerfile
	} else {
		bc.dockerfile = filepath.ToSlash(rel)
	}
	if f, err := os.Open(filepath.Join(b.Context, ".dockerignore")); err == nil {
		bc.excludes, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf(".dockerignore: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(bc.excludes) > 0 {
		// As Docker's CLI does: the Dockerfile and .dockerignore are sent
		// even when excluded (the builder needs the first; the second does
		// no harm).
		bc.excludes = append(bc.excludes, "!.dockerignore")
		if bc.outside == "" {
			bc.excludes = append(bc.excludes, "!"+bc.dockerfile)
		}
	}
	return bc, nil
}

// walk calls fn for every entry of the context that is sent, in lexical
// order of slash-separated path (directories before their contents).
func (bc *buildContext) walk(fn func(rel string, abs string, fi fs.FileInfo) error) error {
	var pm *patternmatcher.PatternMatcher
	if len(bc.excludes) > 0 {
		var err error
		if pm, err = patternmatcher.New(bc.excludes); err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
	}
	parents := map[string]patternmatcher.MatchInfo{}
	return filepath.Walk(bc.dir, func(abs string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(bc.dir, abs)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if pm != nil {
			skip, info, err := pm.MatchesUsingParentResults(rel, parents[path.Dir(rel)])
			if err != nil {
				return fmt.Errorf(".dockerignore: %w", err)
			}
			if fi.IsDir() {
				parents[rel] = info
			}
			if skip {
				if !fi.IsDir() {
					return nil
				}
				// A skipped directory is entered only when an exception
				// pattern may match something inside it (as Docker does).
				if !pm.Exclusions() {
					return filepath.SkipDir
				}
				for _, p := range pm.Patterns() {
					if p.Exclusion() && strings.HasPrefix(p.String()+"/", rel+"/") {
						return nil
					}
				}
				return filepath.SkipDir
			}
		}
		return fn(rel, abs, fi)
	})
}

// write hashes (into h) and, when tw is not nil, tars the context. The hash
// covers each entry's path, type, permissions and content (not times or
// owners), so it changes exactly when what the build sees changes.
func (bc *buildContext) write(h hash.Hash, tw *tar.Writer) error {
	add := func(rel, abs string, fi fs.FileInfo) error {
		mode := fi.Mode()
		switch {
		case mode.IsRegular(), mode.IsDir(), mode&fs.ModeSymlink != 0:
		default:
			return nil // sockets, devices, pipes: Docker cannot COPY them either
		}
		fmt.Fprintf(h, "%s\x00%s\x00", rel, mode)
		var link string
		if mode&fs.ModeSymlink != 0 {
			var err error
			if link, err = os.Readlink(abs); err != nil {
				return err
			}
			h.Write([]byte(link))
		}
		if tw != nil {
			hdr, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return err
			}
			hdr.Name = rel
			if mode.IsDir() {
				hdr.Name += "/"
			}
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
			hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		}
		if mode.IsRegular() {
			f, err := os.Open(abs)
			if err != nil {
				return err
			}
			var w io.Writer = h
			if tw != nil {
				w = io.MultiWriter(h, tw)
			}
			n, err := io.Copy(w, f)
			f.Close()
			if err != nil {
				return err
			}
			if n != fi.Size() {
				return fmt.Errorf("%s changed while it was read", rel)
			}
		}
		h.Write([]byte{0})
		return nil
	}
	if err := bc.walk(add); err != nil {
		return err
	}
	if bc.outside != "" {
		fi, err := os.Stat(bc.outside)
		if err != nil {
			return err
		}
		if err := add(outsideDockerfile, bc.outside, fi); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Close()
	}
	return nil
}

// BuildTag hashes a build's inputs into a 12-hex-digit tag: every file of
// the context that .dockerignore does not exclude (path, type, permissions,
// content; not times), the Dockerfile path, the args and the target. An
// unchanged source gives an unchanged tag; touching a file does not change it.
func BuildTag(b *config.Build) (string, error) {
	bc, err := newBuildContext(b)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := bc.write(h, nil); err != nil {
		return "", err
	}
	return bc.tag(h, b), nil
}

func (bc *buildContext) tag(h hash.Hash, b *config.Build) string {
	fmt.Fprintf(h, "dockerfile=%s\x00target=%s\x00", bc.dockerfile, b.Target)
	keys := make([]string, 0, len(b.Args))
	for k := range b.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "arg %s=%s\x00", k, b.Args[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// buildRequest is one image build on the local engine.
type buildRequest struct {
	Service string
	Build   *config.Build
	// Tag is the content tag the plan expects; the build fails if the
	// context no longer hashes to it.
	Tag string
}

// buildFromContext streams b's context (tarred while hashing it) into
// engine's build and returns the built image's ID. The image is built
// untagged: the caller tags it once the context's hash matched the plan's
// tag, so that a context edited during the build never gets the planned
// tag.
func buildFromContext(ctx context.Context, eng LocalEngine, req buildRequest, line func(string)) (string, error) {
	bc, err := newBuildContext(req.Build)
	if err != nil {
		return "", fmt.Errorf("build context: %w", err)
	}
	pr, pw := io.Pipe()
	h := sha256.New()
	werr := make(chan error, 1)
	go func() {
		err := bc.write(h, tar.NewWriter(pw))
		pw.CloseWithError(err)
		werr <- err
	}()
	args := map[string]*string{}
	for k, v := range req.Build.Args {
		args[k] = &v
	}
	id, berr := eng.BuildImage(ctx, pr, build.ImageBuildOptions{
		Dockerfile:  bc.dockerfile,
		BuildArgs:   args,
		Target:      req.Build.Target,
		Remove:      true,
		ForceRemove: true,
		PullParent:  false,
		Version:     build.BuilderV1,
	}, line)
	pr.CloseWithError(errors.New("build ended"))
	if err := <-werr; err != nil && berr == nil {
		berr = fmt.Errorf("build context: %w", err)
	}
	if berr != nil {
		return "", berr
	}
	if got := bc.tag(h, req.Build); got != req.Tag {
		if id != "" {
			_ = eng.RemoveImage(context.WithoutCancel(ctx), id)
		}
		return "", fmt.Errorf("the build context changed since the plan (its content tag is now %s, the plan's is %s): run berth plan again", got, req.Tag)
	}
	return id, nil
}
