package executor

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/engine"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/executor/transport"
	"github.com/berth-dev/berth/internal/testcluster"
	"github.com/berth-dev/berth/planner"
)

// BenchmarkImageShip ships a ~100 MB image from this machine's engine to the
// test cluster's three nodes with berth, and compares in the same run with
// OpenSSH doing the raw work: `docker save IMAGE | ssh node1 'cat >
// /dev/null'`. The variants run interleaved, BERTH_BENCH_ROUNDS rounds
// (default 5), and the medians are reported. Run it with scripts/bench-images.
//
// Variants:
//
//	raw-ssh-1      docker save | ssh node1 'cat > /dev/null'       (the goal's baseline)
//	raw-load-1     docker save | ssh node1 'docker load'           (what the node's load costs)
//	raw-load-3     docker save | tee to ssh node1..3 'docker load' (OpenSSH doing berth's work)
//	berth-1        berth to node1
//	berth-3        berth to node1, node2, node3 (one save, teed)   (goal: <= 1.5x raw-ssh-1)
//	berth-3-gzip   the same, gzip (fastest level) once for all nodes
//	save-v2        docker save of v2 to /dev/null: the local engine's part of any v2 send
//	v2-whole-3     the image plus a new 512 kB top layer, to node1..3 that hold the
//	               image: the whole image, as before issue 18 (WholeImages)
//	v2-layers-3    the same, only the layers the nodes lack (the default; goal:
//	               under 2 MB per node, at most 0.15x v2-whole-3)
//
// BERTH_BENCH_CONTENT=random (default: incompressible, the worst case for
// gzip) or text (Go source: compresses ~4x, the best case). With
// BERTH_BENCH_RATE=12.5MB every berth variant is capped at that rate per
// node (a 100 Mbit/s link) to see where compression starts to pay.
// BERTH_BENCH_ONLY=raw-ssh-1,berth-3 runs only the variants named.
func BenchmarkImageShip(b *testing.B) {
	c := testcluster.Require(b)
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("BERTH_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	rate, _ := images.ParseBytes(os.Getenv("BERTH_BENCH_RATE"))
	content := os.Getenv("BERTH_BENCH_CONTENT")
	if content == "" {
		content = "random"
	}
	ctx := context.Background()
	eng, err := engine.OpenLocal(ctx, os.Environ())
	if err != nil {
		b.Skipf("no local engine: %v", err)
	}
	b.Cleanup(func() { eng.Close() }) // after the image is removed

	// The image: FROM scratch and one ~100 MB file.
	ref := "berth-bench/ship:" + content + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	id := benchImage(b, eng, ref, content)
	b.Cleanup(func() {
		if cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation()); err == nil {
			cli.ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
			cli.Close()
		}
		for _, n := range c.Nodes {
			c.Docker(b, n.Name).ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	})
	img, err := eng.InspectImage(ctx, ref)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("image %s %s, %s, content %s, %d rounds, rate cap %d B/s", ref, planner.ShortID(id), planner.HumanBytes(img.Size), content, rounds, rate)

	cfg := &config.Config{Project: config.Project{Name: "bench"}}
	for _, n := range c.Nodes {
		cfg.Nodes = append(cfg.Nodes, &config.Node{Name: n.Name, Address: n.Addr, User: c.User, IdentityFile: c.Key, KnownHosts: c.KnownHosts})
	}

	var id2 string // the one-layer change, below
	clean := func(nodes ...string) {
		for _, n := range nodes {
			for _, i := range []string{id2, id} {
				if i != "" {
					c.Docker(b, n).ImageRemove(ctx, i, image.RemoveOptions{Force: true, PruneChildren: true})
				}
			}
		}
	}
	shell := func(script string) func() error {
		return func() error {
			out, err := exec.Command("bash", "-o", "pipefail", "-c", script).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", script, err, out)
			}
			return nil
		}
	}
	sshCmd := func(node, remote string) string {
		return "ssh " + strings.Join(quoteAll(c.SSHArgs(node, remote)), " ")
	}
	// berth opens its session (three SSH connections, in parallel) and
	// ships: both are timed.
	var lastSent int64 // bytes the last berth run sent to its first node
	shipRef := func(ref, id string, compress, whole bool, nodes ...string) func() error {
		return func() error {
			sess := Open(ctx, cfg, Options{SSH: transport.Options{HomeDir: b.TempDir(), Environ: []string{}, NoTTY: true}})
			defer sess.Close()
			st := NewImageStep(cfg, sess, images.Options{Compress: compress, RateLimit: rate, WholeImages: whole,
				Local: func(context.Context) (images.LocalEngine, error) { return keepOpen{eng}, nil }})
			err := st.Run(ctx, &planner.Plan{Images: []planner.ImageAction{{Kind: planner.ImageSend, Image: ref, ID: id, Nodes: nodes}}})
			lastSent = st.BytesSent()[nodes[0]]
			for _, n := range nodes {
				if st.BytesSent()[n] == 0 && err == nil {
					return fmt.Errorf("nothing sent to %s", n)
				}
			}
			return err
		}
	}
	ship := func(compress bool, nodes ...string) func() error { return shipRef(ref, id, compress, false, nodes...) }
	all := []string{"node1", "node2", "node3"}

	// The one-layer change (issue 18): v2 is the image plus a small new
	// top layer (under 1 MB); the nodes hold the image (v1) and lack v2.
	ref2 := ref + "-v2"
	id2 = benchTopLayer(b, eng, ref, ref2)
	b.Cleanup(func() {
		if cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation()); err == nil {
			cli.ImageRemove(context.Background(), id2, image.RemoveOptions{Force: true, PruneChildren: true})
			cli.Close()
		}
		for _, n := range c.Nodes {
			c.Docker(b, n.Name).ImageRemove(context.Background(), id2, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	})
	v1On := func(nodes ...string) {
		for _, n := range nodes {
			if _, err := c.Docker(b, n).ImageInspect(ctx, id); err == nil {
				continue
			}
			if err := shipRef(ref, id, false, true, n)(); err != nil {
				b.Fatal(err)
			}
		}
	}
	clean2 := func(nodes ...string) {
		for _, n := range nodes {
			c.Docker(b, n).ImageRemove(ctx, id2, image.RemoveOptions{Force: true})
		}
		v1On(nodes...)
	}
	variants := []struct {
		name  string
		run   func() error
		nodes []string // cleaned before the run
		// v2: the one-layer-change variants: the nodes hold v1 and lack v2.
		v2 bool
	}{
		{"raw-ssh-1", shell("docker save " + ref + " | " + sshCmd("node1", "cat > /dev/null")), nil, false},
		{"raw-load-1", shell("docker save " + ref + " | " + sshCmd("node1", "docker load -q")), []string{"node1"}, false},
		{"raw-load-3", teeSSH(c, ref, all), all, false},
		{"berth-1", ship(false, "node1"), []string{"node1"}, false},
		{"berth-3", ship(false, all...), all, false},
		{"berth-3-gzip", ship(true, all...), all, false},
		{"save-v2", shell("docker save " + ref2 + " > /dev/null"), nil, false},
		{"v2-whole-3", shipRef(ref2, id2, false, true, all...), all, true},
		{"v2-layers-3", shipRef(ref2, id2, false, false, all...), all, true},
	}
	if only := os.Getenv("BERTH_BENCH_ONLY"); only != "" {
		var keep = variants[:0]
		for _, v := range variants {
			if strings.Contains(","+only+",", ","+v.name+",") {
				keep = append(keep, v)
			}
		}
		variants = keep
	}
	times := map[string][]time.Duration{}
	sentBytes := map[string]int64{}
	for r := 0; r < rounds; r++ {
		// Interleaved, and the order rotates so no variant always runs
		// right after the same other one.
		for k := range variants {
			v := variants[(k+r)%len(variants)]
			if v.v2 {
				clean2(v.nodes...)
			} else {
				clean(v.nodes...)
			}
			time.Sleep(200 * time.Millisecond)
			start := time.Now()
			if err := v.run(); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			times[v.name] = append(times[v.name], time.Since(start))
			if strings.HasPrefix(v.name, "berth") || v.v2 {
				sentBytes[v.name] = lastSent
			}
		}
	}
	clean(all...)
	base := median(times["raw-ssh-1"])
	if base == 0 {
		base = time.Second
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-14s %9s %9s %9s %9s  %s\n", "variant", "median", "min", "max", "per node", "x raw-ssh-1")
	for _, v := range variants {
		ts := times[v.name]
		m := median(ts)
		per := "-"
		if n, ok := sentBytes[v.name]; ok {
			per = planner.HumanBytes(n)
		}
		fmt.Fprintf(&table, "%-14s %9s %9s %9s %9s  %.2f   %v\n", v.name, m.Round(time.Millisecond), slicesMin(ts).Round(time.Millisecond),
			slicesMax(ts).Round(time.Millisecond), per, m.Seconds()/base.Seconds(), roundAll(ts))
		b.ReportMetric(m.Seconds(), v.name+"-s")
	}
	b.Logf("%s", table.String())
	b.ReportMetric(median(times["berth-3"]).Seconds()/base.Seconds(), "berth-3/raw-ssh-1")
	if w := median(times["v2-whole-3"]); w > 0 {
		b.ReportMetric(median(times["v2-layers-3"]).Seconds()/w.Seconds(), "v2-layers-3/v2-whole-3")
	}
}

// teeSSH runs docker save ref once, teed to `ssh NODE docker load` for
// every node (OpenSSH doing what berth does).
func teeSSH(c *testcluster.Cluster, ref string, nodes []string) func() error {
	return func() error {
		save := exec.Command("docker", "save", ref)
		out, err := save.StdoutPipe()
		if err != nil {
			return err
		}
		var ws []io.Writer
		var loads []*exec.Cmd
		var closers []io.Closer
		for _, n := range nodes {
			load := exec.Command("ssh", c.SSHArgs(n, "docker load -q")...)
			in, err := load.StdinPipe()
			if err != nil {
				return err
			}
			if err := load.Start(); err != nil {
				return err
			}
			ws, loads, closers = append(ws, in), append(loads, load), append(closers, in)
		}
		if err := save.Start(); err != nil {
			return err
		}
		_, cerr := io.Copy(io.MultiWriter(ws...), out)
		for _, cl := range closers {
			cl.Close()
		}
		errs := []error{cerr, save.Wait()}
		for _, l := range loads {
			errs = append(errs, l.Wait())
		}
		return errors.Join(errs...)
	}
}

// keepOpen is the bench's local engine for one run's image step, which
// closes it when done: the next rounds still need it.
type keepOpen struct{ *engine.Node }

func (keepOpen) Close() error { return nil }

// benchTopLayer builds ref2 on eng: ref and one more layer, a file of 512
// kB of random bytes.
func benchTopLayer(b *testing.B, eng *engine.Node, ref, ref2 string) string {
	blob := make([]byte, 512<<10)
	rand.Read(blob)
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	df := []byte("FROM " + ref + "\nCOPY top /top\n")
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))})
	tw.Write(df)
	tw.WriteHeader(&tar.Header{Name: "top", Mode: 0o644, Size: int64(len(blob))})
	tw.Write(blob)
	tw.Close()
	id, err := eng.BuildImage(context.Background(), &ctxTar, build.ImageBuildOptions{Dockerfile: "Dockerfile", Tags: []string{ref2}, Remove: true, Version: build.BuilderV1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return id
}

// benchImage builds ref on eng: FROM scratch with one ~100 MB file of
// random bytes or of Go source text.
func benchImage(b *testing.B, eng *engine.Node, ref, content string) string {
	const size = 100 << 20
	blob := make([]byte, 0, size)
	switch content {
	case "random":
		blob = blob[:size]
		rand.Read(blob)
	case "text":
		root := filepath.Join(os.Getenv("GOROOT"), "src")
		if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
			root = filepath.Join(strings.TrimSpace(string(out)), "src")
		}
		for len(blob) < size {
			filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
				if err != nil || len(blob) >= size || !strings.HasSuffix(p, ".go") {
					return nil
				}
				data, _ := os.ReadFile(p)
				blob = append(blob, data...)
				return nil
			})
		}
		blob = blob[:size]
	default:
		b.Fatalf("BERTH_BENCH_CONTENT=%s: want random or text", content)
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	df := []byte("FROM scratch\nCOPY blob /blob\n")
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))})
	tw.Write(df)
	tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: int64(len(blob))})
	tw.Write(blob)
	tw.Close()
	id, err := eng.BuildImage(context.Background(), &ctxTar, build.ImageBuildOptions{Dockerfile: "Dockerfile", Tags: []string{ref}, Remove: true, Version: build.BuilderV1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return id
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}

func median(ts []time.Duration) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func slicesMin(ts []time.Duration) time.Duration {
	m := ts[0]
	for _, t := range ts {
		m = min(m, t)
	}
	return m
}

func slicesMax(ts []time.Duration) time.Duration {
	m := ts[0]
	for _, t := range ts {
		m = max(m, t)
	}
	return m
}

func roundAll(ts []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Round(10 * time.Millisecond)
	}
	return out
}
