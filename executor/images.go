package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// ImageFacts are what the planner needs to know about images that lives on
// the machine running berth: the content tag each build would produce, and
// the images the local engine already holds.
type ImageFacts struct {
	BuildImages map[string]string // service -> content-tagged reference
	LocalImages []planner.Image
}

// LocalImageFacts computes build tags (reading the build contexts) and, when
// withLocal is set, lists the local engine's images. An unreachable local
// engine is not an error unless a service has a build block (it has to be
// built there).
func LocalImageFacts(ctx context.Context, cfg *config.Config, withLocal bool) (ImageFacts, error) {
	f := ImageFacts{BuildImages: map[string]string{}}
	needLocal := false
	for _, s := range cfg.Services {
		if s.Build == nil {
			continue
		}
		needLocal = true
		tag, err := BuildTag(s.Build)
		if err != nil {
			return f, fmt.Errorf("service %q: build context: %w", s.Name, err)
		}
		f.BuildImages[s.Name] = BuildRef(cfg.Project.Name, s, tag)
	}
	if !withLocal {
		return f, nil
	}
	n, err := LocalEngine(ctx, cfg)
	if err != nil {
		if needLocal {
			return f, fmt.Errorf("the local Docker engine (needed to build images): %w", err)
		}
		return f, nil
	}
	defer n.Close()
	imgs, err := n.Images(ctx)
	if err != nil {
		if needLocal {
			return f, fmt.Errorf("list the local engine's images: %w", err)
		}
		return f, nil
	}
	f.LocalImages = imgs
	return f, nil
}

// LocalEngine connects to the Docker engine of the machine running berth.
func LocalEngine(ctx context.Context, cfg *config.Config) (Node, error) {
	sock, err := localSocket(&config.Node{Name: "local", Address: config.LocalAddress}, os.Environ())
	if err != nil {
		return nil, err
	}
	return NewLocalNode(ctx, "local", sock, DefaultRequestTimeout)
}

// BuildRef is the reference a build is tagged with: the repository of the
// service's image (or berth/PROJECT-SERVICE) and the content tag.
func BuildRef(project string, s *config.Service, tag string) string {
	repo := "berth/" + project + "-" + s.Name
	if s.Image != "" {
		repo = s.Image
		// Drop a tag (a ':' after the last '/') or digest.
		if i := strings.LastIndex(repo, "@"); i >= 0 {
			repo = repo[:i]
		}
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
	}
	return repo + ":" + tag
}

// BuildTag hashes a build's inputs (every file of the context except those
// .dockerignore excludes and .git, with its path and mode; the Dockerfile
// path, args and target) into a 12-hex-digit tag: an unchanged source gives
// an unchanged tag.
func BuildTag(b *config.Build) (string, error) {
	h := sha256.New()
	ignore := readDockerignore(b.Context)
	var files []string
	err := filepath.WalkDir(b.Context, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.Context, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() && (d.Name() == ".git" || ignored(ignore, rel)) {
			return filepath.SkipDir
		}
		if !d.IsDir() && !ignored(ignore, rel) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, rel := range files {
		p := filepath.Join(b.Context, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%o\x00", filepath.ToSlash(rel), fi.Mode())
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", err
			}
		} else if fi.Mode()&fs.ModeSymlink != 0 {
			t, _ := os.Readlink(p)
			h.Write([]byte(t))
		}
		h.Write([]byte{0})
	}
	fmt.Fprintf(h, "dockerfile=%s\x00target=%s\x00", b.Dockerfile, b.Target)
	keys := make([]string, 0, len(b.Args))
	for k := range b.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "arg %s=%s\x00", k, b.Args[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func readDockerignore(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, ".dockerignore"))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "!") {
			out = append(out, strings.TrimPrefix(filepath.Clean(l), "/"))
		}
	}
	return out
}

func ignored(patterns []string, rel string) bool {
	rel = filepath.ToSlash(rel)
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
		if strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

// ImageWork returns apply's image step: build, send and pull what the plan's
// Images list says, before any container changes. Nil when nothing can be
// done here yet.
func ImageWork(cfg *config.Config, s *Session, progress io.Writer, terminal bool) func(ctx context.Context, p *planner.Plan) error {
	return nil
}
