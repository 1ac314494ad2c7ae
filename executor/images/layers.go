package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
)

// A node's engine keeps a layer by its chain ID (the layer and every layer
// under it) and, loading a docker save archive, reads the layer.tar of only
// the layers whose chain it lacks (moby's tarexport load). So an archive
// from which the layer.tar of every layer the node holds is removed loads
// the same image, through the engine's own load path. Where the engine
// refuses it (it lacks a removed layer after all), the load fails whole and
// leaves nothing behind; the caller then sends the whole image.

// chainIDs returns the chain ID of each layer of diffIDs (base first):
// the first layer's diff ID, then sha256 of "parent-chain diff-id".
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// stripLayers returns the docker save archive src without the layer
// tarballs of the image's first skip layers (layers are its diff IDs, base
// first); every other entry (manifest.json, the config, repositories, the
// legacy VERSION and json files, OCI index and manifests) is copied as it
// is. It reads src as it is read, holding at most one small entry.
//
// The two layouts docker save writes:
//   - legacy (engines before 25): "<v1id>/layer.tar", where v1id is a digest
//     of the directory's json file with the layer's chain ID in it: the
//     json entry comes before layer.tar (the archive is in lexical order),
//     and the chain ID that reproduces the directory's id names its layer.
//   - OCI (25 and later): "blobs/sha256/<hex>", where a layer's blob is its
//     uncompressed tar, so hex is its diff ID.
//
// A layer it cannot recognise is sent: the archive may then be bigger than
// needed, never wrong.
func stripLayers(src io.Reader, layers []string, skip int) *layerStripper {
	s := &layerStripper{tr: tar.NewReader(src), drop: map[string]bool{}, dirs: map[string]int{}, chains: chainIDs(layers)}
	s.tw = tar.NewWriter(&s.buf)
	for _, l := range layers[:min(skip, len(layers))] {
		s.drop[l] = true
	}
	s.layers = layers
	return s
}

type layerStripper struct {
	tr     *tar.Reader
	tw     *tar.Writer
	buf    bytes.Buffer // output not read yet
	cur    io.Reader    // the content of the entry being copied
	err    error        // sticky; io.EOF once the archive is written
	layers []string
	chains []string
	drop   map[string]bool // diff IDs whose layer.tar is left out
	dirs   map[string]int  // legacy directory -> layer index
	// Dropped counts the layer tarballs left out, DroppedBytes their size.
	Dropped      int
	DroppedBytes int64
}

func (s *layerStripper) Read(p []byte) (int, error) {
	for s.buf.Len() == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.err = s.step()
	}
	return s.buf.Read(p)
}

// step writes the next piece of output into buf (or nothing, for a dropped
// entry).
func (s *layerStripper) step() error {
	if s.cur != nil {
		if _, err := io.CopyN(s.tw, s.cur, 256<<10); err == io.EOF {
			s.cur = nil
		} else if err != nil {
			return err
		}
		return nil
	}
	h, err := s.tr.Next()
	if err == io.EOF {
		if err := s.tw.Close(); err != nil {
			return err
		}
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("docker save archive: %w", err)
	}
	name := path.Clean(h.Name)
	if h.Typeflag == tar.TypeReg && s.dropped(name) {
		s.Dropped++
		s.DroppedBytes += h.Size
		return nil // Next skips its content
	}
	if err := s.tw.WriteHeader(h); err != nil {
		return err
	}
	if dir, file := path.Split(name); file == "json" && dir != "" && h.Typeflag == tar.TypeReg && h.Size <= 1<<20 {
		b, err := io.ReadAll(s.tr)
		if err != nil {
			return fmt.Errorf("docker save archive: %s: %w", name, err)
		}
		s.identify(strings.TrimSuffix(dir, "/"), b)
		_, err = s.tw.Write(b)
		return err
	}
	s.cur = s.tr
	return nil
}

func (s *layerStripper) dropped(name string) bool {
	if hexID, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
		return s.drop["sha256:"+hexID]
	}
	if dir, ok := strings.CutSuffix(name, "/layer.tar"); ok {
		if i, ok := s.dirs[dir]; ok {
			return s.drop[s.layers[i]]
		}
	}
	return false
}

// identify finds which layer the legacy directory dir holds, from its json
// file: moby's v1.CreateID digests that json without its id (and, below
// the top layer, without os), with the parent as a digest and the layer's
// chain ID as "layer_id"; the chain ID that reproduces dir is the one.
func (s *layerStripper) identify(dir string, b []byte) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return
	}
	var id, parent string
	if json.Unmarshal(m["id"], &id) != nil || id != dir {
		return
	}
	delete(m, "id")
	if raw, ok := m["parent"]; ok {
		if json.Unmarshal(raw, &parent) == nil && !strings.HasPrefix(parent, "sha256:") {
			m["parent"] = json.RawMessage(`"sha256:` + parent + `"`)
		}
	}
	variants := []map[string]json.RawMessage{m}
	if _, ok := m["os"]; ok {
		noOS := make(map[string]json.RawMessage, len(m))
		for k, v := range m {
			if k != "os" {
				noOS[k] = v
			}
		}
		variants = append(variants, noOS)
	}
	for i, c := range s.chains {
		for _, v := range variants {
			v["layer_id"] = json.RawMessage(`"` + c + `"`)
			out, err := json.Marshal(v)
			if err != nil {
				return
			}
			if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) == id {
				s.dirs[dir] = i
				return
			}
		}
	}
}
