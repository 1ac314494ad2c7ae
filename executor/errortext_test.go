package executor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor/images"
	"github.com/berth-dev/berth/internal/errtext"
)

// engineErrs is what an engine node returns when each Node method fails:
// "<op> <object>: <Docker's message>" (see engine.Node's wrap).
var engineErrs = map[string]string{
	"Info":            "engine info",
	"Containers":      "list containers",
	"Inspect":         "inspect container c0ffee",
	"Images":          "list images",
	"HostPorts":       "read host ports",
	"Volumes":         "list volumes",
	"CreateContainer": "create container demo-web-1",
	"StartContainer":  "start container c0ffee",
	"StopContainer":   "stop container c0ffee",
	"RenameContainer": "rename container c0ffee to demo-web-1_berth_old_x",
	"RemoveContainer": "remove container c0ffee",
	"UpdateContainer": "update container c0ffee",
	"Logs":            "logs of container c0ffee",
	"CreateVolume":    "create volume data",
	"RemoveVolume":    "remove volume data",
}

// Every error an apply or a gather can end with adds each context once:
// over the fake nodes, each Node method is made to fail (with the text the
// engine gives) from each boundary of an apply of each kind of action, and
// the node is lost mid-apply; no error text repeats a word at a join.
func TestErrorTextsAddContextOnce(t *testing.T) {
	volume := `
  volume {
    source = "data"
    target = "/data"
  }
`
	scenarios := []struct {
		name, before, after string
	}{
		{"create", "", webService("echo:v1", 2, "")},
		{"replace", webService("echo:v1", 2, ""), webService("echo:v2", 2, "")},
		{"replace with a volume", webService("echo:v1", 2, volume), webService("echo:v2", 2, volume)},
		{"health", webService("echo:v1", 2, ""), webService("echo:broken", 2, "")},
		{"update", webService("echo:v1", 2, ""), webService("echo:v1", 2, "  resources {\n    memory = \"64MiB\"\n  }\n")},
		{"delete", webService("echo:v1", 3, ""), webService("echo:v1", 1, "")},
	}
	// "gathered": once the lock is held and the nodes read (SetPlan next).
	points := []string{"", "gathered", "locked", "preflight", "batch", "created", "started", "healthy", "action", "commit-marked"}
	seen := map[string]bool{}
	check := func(where, text string) {
		if text == "" || seen[text] {
			return
		}
		seen[text] = true
		if testing.Verbose() {
			t.Logf("%s:\n%s", where, text)
		}
		if r := errtext.RepeatedAtJoin(text); r != "" {
			t.Errorf("%s: repeated context at %q in:\n%s", where, r, text)
		}
	}
	for _, sc := range scenarios {
		for _, method := range slices.Sorted(maps.Keys(engineErrs)) {
			for _, point := range append(points, "lost") {
				if point == "lost" && method != "Info" {
					continue // the node lost: every method fails
				}
				fc := newFakeCluster(t)
				if sc.before != "" {
					if _, err := fc.run(loadHCL(t, sc.before), Request{Op: OpApply, AutoApprove: true}, &recordView{}); err != nil {
						t.Fatal(err)
					}
				}
				n2 := fc.nodes["node2"]
				fail := func() {
					if point == "lost" {
						n2.Close()
						return
					}
					n2.SetError(method, fmt.Errorf("%s: Error response from daemon: injected failure", engineErrs[method]))
				}
				armAt := point
				if point == "lost" {
					armAt = "created"
				}
				if armAt == "" {
					fail()
				}
				where := fmt.Sprintf("%s, %s failing from %q", sc.name, method, point)
				o, err := fc.run(loadHCL(t, sc.after), Request{Op: OpApply, AutoApprove: true, Hook: func(p string) {
					if p == armAt {
						fail()
					}
				}, ImageFacts: func(context.Context, *config.Config, bool) (images.Facts, error) {
					if armAt == "gathered" {
						fail()
					}
					return images.Facts{BuildImages: map[string]string{}}, nil
				}}, &recordView{})
				if err != nil {
					check(where, err.Error())
				}
				if o != nil && o.Live != nil {
					for _, st := range o.Live.Nodes {
						check(where+", gather", st.Error)
					}
				}
			}
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d error texts seen", len(seen))
	}
	t.Logf("%d error texts checked", len(seen))
}
