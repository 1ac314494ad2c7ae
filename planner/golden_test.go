package planner

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/berth-dev/berth/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ (and live.json of cases that have before/)")

// Each case under testdata/ is a directory with the desired configuration
// (*.hcl), the live state (live.json) and the expected plan (plan.txt,
// plan.json) or, when planning must fail, the expected diagnostics
// (diags.txt). options.json holds planner options.
//
// A case with a before/ directory generates its live.json under -update: the
// before/ configuration is planned against empty nodes and simulated, then the
// edits of tweak.json are applied. That keeps every label (hashes, specs)
// exactly what berth itself writes.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) { runGolden(t, dir) })
	}
	if n < 30 {
		t.Fatalf("only %d golden cases; want at least 30", n)
	}
}

type caseOptions struct {
	Options
	// Vars are -var inputs for the configuration.
	Vars []string `json:"vars"`
}

func loadCase(t *testing.T, dir string) (*config.Config, hcl.Diagnostics) {
	var in config.Inputs
	var co caseOptions
	readJSON(t, filepath.Join(dir, "options.json"), &co, true)
	for _, v := range co.Vars {
		in.Args = append(in.Args, config.VarArg{Value: v})
	}
	cfg, diags := config.Load(dir, in)
	if diags.HasErrors() {
		t.Fatalf("configuration of %s does not load: %v", dir, diags)
	}
	return cfg, diags
}

func readJSON(t *testing.T, path string, v any, optional bool) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		if optional && os.IsNotExist(err) {
			return false
		}
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return true
}

func runGolden(t *testing.T, dir string) {
	cfg, _ := loadCase(t, dir)
	var co caseOptions
	readJSON(t, filepath.Join(dir, "options.json"), &co, true)
	livePath := filepath.Join(dir, "live.json")
	if *update {
		_, errBefore := os.Stat(filepath.Join(dir, "before"))
		_, errTweak := os.Stat(filepath.Join(dir, "tweak.json"))
		_, errLive := os.Stat(livePath)
		if errBefore == nil || errTweak == nil || errLive != nil {
			generateLive(t, dir, cfg)
		}
	}
	var live Live
	readJSON(t, livePath, &live, false)

	plan, diags := Make(cfg, &live, co.Options)
	if diags.HasErrors() {
		got := renderDiags(dir, diags)
		golden(t, filepath.Join(dir, "diags.txt"), got)
		return
	}
	if _, err := os.Stat(filepath.Join(dir, "diags.txt")); err == nil && !*update {
		t.Fatalf("planning succeeded, but the case expects diagnostics")
	}
	var text bytes.Buffer
	plan.WriteText(&text)
	golden(t, filepath.Join(dir, "plan.txt"), text.String())
	js, _ := json.MarshalIndent(plan, "", "  ")
	golden(t, filepath.Join(dir, "plan.json"), string(js)+"\n")

	checkActionFields(t, plan, &live)

	// Every golden case also holds the properties: deterministic, no
	// secret in the output, converges.
	again, _ := Make(cfg, &live, co.Options)
	js2, _ := json.MarshalIndent(again, "", "  ")
	if !bytes.Equal(js, js2) {
		t.Fatal("planning twice gave different plans")
	}
	for _, v := range cfg.SensitiveValues {
		if strings.Contains(text.String(), v) || strings.Contains(string(js), v) {
			t.Fatalf("sensitive value %q appears in the plan", v)
		}
	}
	co.Options.Interrupted = nil
	after := Simulate(&live, plan)
	next, d := Make(cfg, after, Options{LocalImages: co.LocalImages, BuildImages: co.BuildImages, Destroy: co.Destroy})
	if d.HasErrors() {
		t.Fatalf("replanning after Simulate: %v", d)
	}
	if !next.Empty() {
		var b bytes.Buffer
		next.WriteText(&b)
		t.Fatalf("the plan does not converge; after simulating it:\n%s", b.String())
	}
}

// checkActionFields checks what every action of the JSON plan carries: its
// ports (never null), and an order exactly when it is a replace.
func checkActionFields(t *testing.T, plan *Plan, live *Live) {
	t.Helper()
	js, _ := json.Marshal(plan)
	var doc struct {
		Actions  []map[string]json.RawMessage `json:"actions"`
		Recovery []map[string]json.RawMessage `json:"recovery"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	for i, a := range append(doc.Recovery, doc.Actions...) {
		for _, k := range []string{"kind", "service", "replica", "node", "container", "reason", "batch", "step"} {
			if _, ok := a[k]; !ok {
				t.Errorf("action %d has no %q: %s", i, k, js)
			}
		}
		if p, ok := a["ports"]; !ok || string(p) == "null" {
			t.Errorf("action %d has no ports array", i)
		}
		var kind string
		json.Unmarshal(a["kind"], &kind)
		_, hasOrder := a["order"]
		if (kind == string(Replace)) != hasOrder {
			t.Errorf("action %d (%s) has order %v", i, kind, hasOrder)
		}
	}
	// A delete's ports are those its container published.
	for _, a := range append(append([]Action(nil), plan.Recovery...), plan.Actions...) {
		if a.Kind != Delete && a.Kind != Discard {
			continue
		}
		st := live.Node(a.Old.Node)
		for _, c := range st.Containers {
			if c.ID == a.Old.ID {
				if want := bindingPorts(c.Ports); !cmp.Equal(a.Ports, want) {
					t.Errorf("%s %s: ports %v, its container publishes %v", a.Kind, a.Container, a.Ports, want)
				}
			}
		}
	}
}

func renderDiags(dir string, diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		pos := ""
		if d.Subject != nil {
			rel, err := filepath.Rel(dir, d.Subject.Filename)
			if err != nil {
				rel = d.Subject.Filename
			}
			pos = fmt.Sprintf("%s:%d: ", filepath.ToSlash(rel), d.Subject.Start.Line)
		}
		fmt.Fprintf(&b, "%s%s: %s\n", pos, sev, d.Summary)
		if d.Detail != "" {
			fmt.Fprintf(&b, "%s\n", d.Detail)
		}
	}
	return b.String()
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./planner -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, d)
	}
}

// tweak is one edit to a generated live state.
type tweak struct {
	Op        string            `json:"op"`
	Node      string            `json:"node,omitempty"`
	Container string            `json:"container,omitempty"`
	State     string            `json:"state,omitempty"`
	ExitCode  int               `json:"exit_code,omitempty"`
	Key       string            `json:"key,omitempty"`
	Value     string            `json:"value,omitempty"`
	Port      int               `json:"port,omitempty"`
	Protocol  string            `json:"protocol,omitempty"`
	Name      string            `json:"name,omitempty"`
	Error     string            `json:"error,omitempty"`
	ID        string            `json:"id,omitempty"`
	Tag       string            `json:"tag,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// NanoCPUs and MemoryBytes are a foreign container's reservations.
	NanoCPUs    int64 `json:"nano_cpus,omitempty"`
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// Networks are a container's networks ("networks"); Attached are the
	// container IDs on a node's network ("network").
	Networks []NetworkAttachment `json:"networks,omitempty"`
	Attached []string            `json:"attached,omitempty"`
}

func baseLive(cfg *config.Config) *Live {
	l := &Live{Nodes: map[string]*NodeState{}}
	for _, n := range cfg.Nodes {
		l.Nodes[n.Name] = &NodeState{Name: n.Name, Reachable: true,
			Engine: EngineFacts{ID: "ENGINE-" + strings.ToUpper(n.Name), Version: "20.10.24", APIVersion: "1.41", OS: "linux", Arch: "x86_64", CPUs: 2, MemoryBytes: 4 << 30},
			Images: []Image{
				{ID: "sha256:e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1", Tags: []string{"berth-test/echo:v1"}, Size: 7 << 20},
				{ID: "sha256:e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2", Tags: []string{"berth-test/echo:v2"}, Size: 7 << 20},
				{ID: "sha256:9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d", Tags: []string{"postgres:16"}, Size: 400 << 20},
			}}
	}
	return l
}

// generateLive writes dir/live.json from dir/before/ and dir/tweak.json.
func generateLive(t *testing.T, dir string, cfg *config.Config) {
	live := baseLive(cfg)
	if _, err := os.Stat(filepath.Join(dir, "before")); err == nil {
		before, diags := config.Load(filepath.Join(dir, "before"), config.Inputs{})
		if diags.HasErrors() {
			t.Fatalf("before/: %v", diags)
		}
		live = baseLive(before)
		p, diags := Make(before, live, Options{})
		if diags.HasErrors() {
			t.Fatalf("planning before/: %v", diags)
		}
		live = Simulate(live, p)
	}
	var tweaks []tweak
	readJSON(t, filepath.Join(dir, "tweak.json"), &tweaks, true)
	find := func(name string) (*NodeState, int) {
		for _, nn := range sortedNodeNames(live) {
			st := live.Nodes[nn]
			for i := range st.Containers {
				if st.Containers[i].Name == name {
					return st, i
				}
			}
		}
		t.Fatalf("tweak: no container %s", name)
		return nil, 0
	}
	for _, tw := range tweaks {
		switch tw.Op {
		case "state":
			st, i := find(tw.Container)
			st.Containers[i].State = tw.State
			st.Containers[i].ExitCode = tw.ExitCode
			if tw.State != "running" {
				for _, b := range st.Containers[i].Ports {
					dropHostPort(st, b.Protocol, b.HostPort)
				}
				st.Containers[i].Ports = nil
			}
		case "remove":
			st, i := find(tw.Container)
			dropContainer(st, st.Containers[i].ID)
		case "label":
			st, i := find(tw.Container)
			st.Containers[i].Labels[tw.Key] = tw.Value
		case "rename":
			st, i := find(tw.Container)
			st.Containers[i].Name = tw.Name
		case "set-id":
			st, i := find(tw.Container)
			st.Containers[i].ID = tw.ID
		case "host-port":
			st := live.Nodes[tw.Node]
			st.HostPorts = append(st.HostPorts, HostPort{Protocol: tw.Protocol, IP: "0.0.0.0", Port: tw.Port})
		case "foreign":
			// A container outside the project: it publishes tw.Port (if
			// set) and reserves tw.NanoCPUs and tw.MemoryBytes.
			st := live.Nodes[tw.Node]
			c := Container{ID: fmt.Sprintf("f%d", len(st.Foreign)) + strings.Repeat("0", 62), Name: tw.Name, State: "running", Labels: tw.Labels,
				Image: "nginx:1.25", NanoCPUs: tw.NanoCPUs, MemoryBytes: tw.MemoryBytes}
			if tw.ID != "" {
				c.ID = tw.ID
			}
			if tw.State != "" {
				c.State = tw.State
			}
			if tw.Port != 0 {
				c.Ports = []PortBinding{{HostIP: "0.0.0.0", HostPort: tw.Port, ContainerPort: 80, Protocol: "tcp"}}
				st.HostPorts = append(st.HostPorts, HostPort{Protocol: "tcp", IP: "0.0.0.0", Port: tw.Port})
			}
			st.Foreign = append(st.Foreign, c)
		case "ingress-clear":
			// The node's proxy lost its routes (a restart without its volume).
			live.Nodes[tw.Node].Ingress = &IngressState{}
		case "unreachable":
			live.Nodes[tw.Node] = &NodeState{Name: tw.Node, Reachable: false, Error: tw.Error}
		case "removed":
			// A node no longer configured, found through the recorded
			// node set at address tw.Value.
			live.Nodes[tw.Node].Removed = true
			live.Nodes[tw.Node].Address = tw.Value
		case "image":
			st := live.Nodes[tw.Node]
			kept := st.Images[:0]
			for _, img := range st.Images {
				if !contains(img.Tags, tw.Tag) {
					kept = append(kept, img)
				}
			}
			st.Images = kept
			if tw.ID != "" {
				st.Images = append(st.Images, Image{ID: tw.ID, Tags: []string{tw.Tag}, Size: 7 << 20})
			}
		case "networks":
			st, i := find(tw.Container)
			st.Containers[i].Networks = append([]NetworkAttachment{}, tw.Networks...)
		case "network":
			// A network on the node (replacing one of that name).
			st := live.Nodes[tw.Node]
			st.Networks = slices.DeleteFunc(st.Networks, func(n Network) bool { return n.Name == tw.Name })
			st.Networks = append(st.Networks, Network{ID: tw.ID, Name: tw.Name, Labels: tw.Labels, Containers: tw.Attached})
		case "volume":
			st := live.Nodes[tw.Node]
			st.Volumes = append(st.Volumes, Volume{Name: tw.Name, Labels: tw.Labels})
		case "copy":
			// Duplicate a container onto another node (a replica that
			// exists twice).
			st, i := find(tw.Container)
			c := st.Containers[i]
			c.ID = tw.ID
			c.Labels = maps.Clone(c.Labels)
			for k, v := range tw.Labels {
				c.Labels[k] = v
			}
			c.Ports = nil
			if tw.Name != "" {
				c.Name = tw.Name
				c.State = "running"
			}
			if tw.Tag != "" {
				c.Image = tw.Tag
			}
			live.Nodes[tw.Node].Containers = append(live.Nodes[tw.Node].Containers, c)
		default:
			t.Fatalf("unknown tweak op %q", tw.Op)
		}
	}
	b, _ := json.MarshalIndent(live, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "live.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func dropHostPort(st *NodeState, proto string, port int) {
	out := st.HostPorts[:0]
	for _, h := range st.HostPorts {
		if !(h.Protocol == proto && h.Port == port) {
			out = append(out, h)
		}
	}
	st.HostPorts = out
}

func sortedNodeNames(l *Live) []string {
	var out []string
	for n := range l.Nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
