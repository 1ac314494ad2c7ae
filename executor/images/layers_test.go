package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"testing"
)

// tarOf returns a tar of files (name -> content), in the given order.
func tarOf(t *testing.T, names []string, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// legacySave builds what `docker save` of engines before 25 writes for an
// image with the given layer tarballs: <v1id>/{VERSION,json,layer.tar},
// the config, manifest.json and repositories, in lexical order. The v1 IDs
// are made the way moby's v1.CreateID makes them (the json without id, the
// parent as a digest, "layer_id" the chain ID); the top layer's json
// carries the image's config and os, the others only a zero created time.
func legacySave(t *testing.T, layerTars [][]byte) (archive []byte, diffIDs []string, dirs []string) {
	t.Helper()
	for _, l := range layerTars {
		diffIDs = append(diffIDs, digestOf(l))
	}
	chains := chainIDs(diffIDs)
	files := map[string][]byte{}
	parent := ""
	for i := range layerTars {
		v1 := map[string]any{"created": "1970-01-01T00:00:00Z", "container_config": map[string]any{"Cmd": nil, "Env": nil}}
		if i == len(layerTars)-1 {
			v1 = map[string]any{"created": "2026-12-03T12:00:00Z", "config": map[string]any{"Cmd": []string{"/app"}, "Env": []string{"A=<b>&c"}}, "architecture": "amd64", "os": "linux"}
		}
		in := map[string]any{"layer_id": chains[i]}
		for k, v := range v1 {
			in[k] = v
		}
		if parent != "" {
			in["parent"] = "sha256:" + parent
		}
		b, _ := json.Marshal(in)
		id := strings.TrimPrefix(digestOf(b), "sha256:")
		out := map[string]any{"id": id, "os": "linux"}
		for k, v := range v1 {
			out[k] = v
		}
		if parent != "" {
			out["parent"] = parent
		}
		js, _ := json.Marshal(out)
		files[id+"/"] = nil
		files[id+"/VERSION"] = []byte("1.0")
		files[id+"/json"] = js
		files[id+"/layer.tar"] = layerTars[i]
		dirs = append(dirs, id)
		parent = id
	}
	cfg := []byte(`{"rootfs":{"type":"layers","diff_ids":["` + strings.Join(diffIDs, `","`) + `"]}}`)
	cfgName := strings.TrimPrefix(digestOf(cfg), "sha256:") + ".json"
	files[cfgName] = cfg
	var layerPaths []string
	for _, d := range dirs {
		layerPaths = append(layerPaths, d+"/layer.tar")
	}
	m, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"app:2"}, "Layers": layerPaths}})
	files["manifest.json"] = m
	files["repositories"] = []byte(`{"app":{"2":"` + parent + `"}}`)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return tarOf(t, names, files), diffIDs, dirs
}

// entries reads a tar into name -> content.
func entries(t *testing.T, b []byte) (map[string][]byte, []string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	out := map[string][]byte{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, order
		}
		if err != nil {
			t.Fatalf("the output is not a whole tar: %v", err)
		}
		c, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = c
		order = append(order, h.Name)
	}
}

func strip(t *testing.T, archive []byte, layers []string, skip int) ([]byte, *layerStripper) {
	t.Helper()
	s := stripLayers(bytes.NewReader(archive), layers, skip)
	// Small reads, so that the state machine is exercised across entries.
	var out bytes.Buffer
	buf := make([]byte, 777)
	for {
		n, err := s.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes(), s
}

func bigLayer(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestStripLayersLegacy(t *testing.T) {
	base := tarOf(t, []string{"big"}, map[string][]byte{"big": bigLayer(300_000)})
	mid := tarOf(t, []string{"etc/"}, nil)
	top := tarOf(t, []string{"small"}, map[string][]byte{"small": []byte("v2")})
	archive, diffIDs, dirs := legacySave(t, [][]byte{base, mid, top})
	in, _ := entries(t, archive)

	for skip := 0; skip <= 3; skip++ {
		out, s := strip(t, archive, diffIDs, skip)
		got, _ := entries(t, out)
		for name, content := range in {
			dropped := false
			for i := 0; i < skip; i++ {
				if name == dirs[i]+"/layer.tar" {
					dropped = true
				}
			}
			c, ok := got[name]
			switch {
			case dropped && ok:
				t.Errorf("skip %d: %s is still there", skip, name)
			case !dropped && !ok:
				t.Errorf("skip %d: %s is missing", skip, name)
			case !dropped && !bytes.Equal(c, content):
				t.Errorf("skip %d: %s changed", skip, name)
			}
		}
		if len(got) != len(in)-skip || s.Dropped != skip {
			t.Errorf("skip %d: %d entries (want %d), %d dropped", skip, len(got), len(in)-skip, s.Dropped)
		}
		if skip >= 1 && len(out) > len(archive)-300_000 {
			t.Errorf("skip %d: the output is %d bytes of %d: the big layer went along", skip, len(out), len(archive))
		}
	}
}

func TestStripLayersUnrecognisedDirectoryIsSent(t *testing.T) {
	base := tarOf(t, []string{"big"}, map[string][]byte{"big": bigLayer(1000)})
	top := tarOf(t, []string{"small"}, map[string][]byte{"small": []byte("v2")})
	archive, diffIDs, dirs := legacySave(t, [][]byte{base, top})
	// Another engine's idea of the json: the base's directory is not
	// recognised, so its layer goes along (bigger, never wrong).
	in, order := entries(t, archive)
	in[dirs[0]+"/json"] = bytes.Replace(in[dirs[0]+"/json"], []byte(`"created"`), []byte(`"created_at"`), 1)
	archive = tarOf(t, order, in)
	out, s := strip(t, archive, diffIDs, 1)
	got, _ := entries(t, out)
	if _, ok := got[dirs[0]+"/layer.tar"]; !ok || s.Dropped != 0 {
		t.Errorf("an unrecognised layer was dropped (%d dropped)", s.Dropped)
	}
	// A json whose id is not its directory's is not trusted either.
	in, _ = entries(t, legacySaveOnly(t, base, top))
	renamed := map[string][]byte{}
	var names []string
	for n, c := range in {
		n = strings.Replace(n, dirs[0], strings.Repeat("0", 64), 1)
		renamed[n] = c
		names = append(names, n)
	}
	sort.Strings(names)
	if _, s := strip(t, tarOf(t, names, renamed), diffIDs, 1); s.Dropped != 0 {
		t.Errorf("a directory whose json names another id was dropped")
	}
}

func legacySaveOnly(t *testing.T, layerTars ...[]byte) []byte {
	archive, _, _ := legacySave(t, layerTars)
	return archive
}

func TestStripLayersOCI(t *testing.T) {
	base := tarOf(t, []string{"big"}, map[string][]byte{"big": bigLayer(200_000)})
	top := tarOf(t, []string{"small"}, map[string][]byte{"small": []byte("v2")})
	d0, d1 := digestOf(base), digestOf(top)
	cfg := []byte(`{"rootfs":{"type":"layers","diff_ids":["` + d0 + `","` + d1 + `"]}}`)
	files := map[string][]byte{
		"blobs/":                            nil,
		"blobs/sha256/":                     nil,
		"blobs/sha256/" + d0[7:]:            base,
		"blobs/sha256/" + d1[7:]:            top,
		"blobs/sha256/" + digestOf(cfg)[7:]: cfg,
		"index.json":                        []byte(`{}`),
		"manifest.json":                     []byte(`[{"Config":"blobs/sha256/` + digestOf(cfg)[7:] + `","Layers":["blobs/sha256/` + d0[7:] + `","blobs/sha256/` + d1[7:] + `"]}]`),
		"oci-layout":                        []byte(`{"imageLayoutVersion":"1.0.0"}`),
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	out, s := strip(t, tarOf(t, names, files), []string{d0, d1}, 1)
	got, _ := entries(t, out)
	if _, ok := got["blobs/sha256/"+d0[7:]]; ok || s.Dropped != 1 || s.DroppedBytes != int64(len(base)) {
		t.Errorf("the base blob went along (%d dropped, %d bytes)", s.Dropped, s.DroppedBytes)
	}
	for _, keep := range []string{"blobs/sha256/" + d1[7:], "blobs/sha256/" + digestOf(cfg)[7:], "manifest.json", "index.json", "oci-layout"} {
		if !bytes.Equal(got[keep], files[keep]) {
			t.Errorf("%s is missing or changed", keep)
		}
	}
}

func TestStripLayersBrokenArchive(t *testing.T) {
	base := tarOf(t, []string{"big"}, map[string][]byte{"big": bigLayer(10_000)})
	archive, diffIDs, _ := legacySave(t, [][]byte{base})
	s := stripLayers(bytes.NewReader(archive[:len(archive)/2]), diffIDs, 0)
	if _, err := io.ReadAll(s); err == nil {
		t.Fatal("a truncated archive read as whole")
	}
}
