package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

func init() {
	register(&command{
		name:     "nodes",
		synopsis: "Show the nodes: reachability, engine, capacity, what runs there",
		usage:    "nodes [options] [DIR]",
		help: `
Reads the configuration in DIR (default: the current directory), reaches
every node as status does, and shows per node, like 'docker node ls':
whether it answers (else why not), the engine's version, OS and
architecture, whether it is drained (drain = true: berth moves its
replicas elsewhere and places none there), its CPUs and memory with the part the running replicas of
this project reserve (cpus and memory of their services), its labels from
the configuration, and how many containers of this project and of others
it holds. Nothing is changed on any node.

Exit status: 0 when every node was read, 1 when the configuration has
errors or any node is unreachable (the others are still shown).`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			cf := addConnFlags(fs)
			jsonOut := fs.Bool("json", false, "Print the nodes as a JSON document (format_version "+nodesFormatVersion+").")
			return func(ctx context.Context, s Streams, args []string) error {
				dir, err := dirArg(args)
				if err != nil {
					return err
				}
				cfg, err := loadConfig(s, dir, cf)
				if err != nil {
					return err
				}
				s = redactStreams(s, cfg)
				o, err := executor.Run(ctx, cfg, cf.request(s, cfg, executor.OpStatus), nil)
				if err != nil {
					return err
				}
				nr := buildNodes(cfg, o.Live)
				if *jsonOut {
					err = writeJSON(s.Out, nr)
				} else {
					writeNodesText(s.Out, nr, !noColor(s, *cf.noColor))
				}
				if err != nil {
					return err
				}
				if nr.Unreachable > 0 {
					return exitCode(1, nil)
				}
				return nil
			}
		},
	})
}

// nodesFormatVersion is the version of nodes -json's document.
const nodesFormatVersion = "1.0"

type nodesReport struct {
	FormatVersion string       `json:"format_version"`
	Project       string       `json:"project"`
	Nodes         []nodeReport `json:"nodes"`
	Unreachable   int          `json:"unreachable_nodes"`
}

type nodeReport struct {
	Name      string            `json:"name"`
	Address   string            `json:"address"`
	Reachable bool              `json:"reachable"`
	Error     string            `json:"error,omitempty"`
	Labels    map[string]string `json:"labels"`
	// Drained is the configuration's drain: no replica is placed there.
	Drained bool `json:"drained"`
	// The engine's facts (reachable nodes only).
	Engine   string `json:"engine_version,omitempty"`
	OS       string `json:"os,omitempty"`
	Arch     string `json:"arch,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	CPUs     int    `json:"cpus,omitempty"`
	Memory   int64  `json:"memory_bytes,omitempty"`
	// ReservedCPUs (nano CPUs) and ReservedMemory are what the running
	// replicas of this project reserve.
	ReservedNanoCPUs int64 `json:"reserved_nano_cpus"`
	ReservedMemory   int64 `json:"reserved_memory_bytes"`
	// ProjectContainers counts this project's containers (any state,
	// berth's own included), OtherContainers every other one.
	ProjectContainers int `json:"project_containers"`
	OtherContainers   int `json:"other_containers"`
}

// buildNodes joins the configured nodes with what was gathered. It is pure.
func buildNodes(cfg *config.Config, live *planner.Live) nodesReport {
	r := nodesReport{FormatVersion: nodesFormatVersion, Project: cfg.Project.Name, Nodes: []nodeReport{}}
	for _, n := range cfg.Nodes {
		nr := nodeReport{Name: n.Name, Address: n.Address, Labels: n.Labels, Drained: n.Drain}
		if nr.Labels == nil {
			nr.Labels = map[string]string{}
		}
		st := live.Node(n.Name)
		switch {
		case st == nil:
			nr.Error = n.Name + ": not gathered"
		case !st.Reachable:
			nr.Error = st.Error
		default:
			e := st.Engine
			nr.Reachable = true
			nr.Engine, nr.OS, nr.Arch, nr.Hostname, nr.CPUs, nr.Memory = e.Version, e.OS, e.Arch, e.Hostname, e.CPUs, e.MemoryBytes
			nr.ProjectContainers = len(st.Containers)
			nr.OtherContainers = max(e.Containers-len(st.Containers), 0)
			for _, c := range st.Containers {
				if c.Running() {
					nr.ReservedNanoCPUs += c.NanoCPUs
					nr.ReservedMemory += c.MemoryBytes
				}
			}
		}
		if !nr.Reachable {
			r.Unreachable++
		}
		r.Nodes = append(r.Nodes, nr)
	}
	sort.Slice(r.Nodes, func(i, j int) bool { return r.Nodes[i].Name < r.Nodes[j].Name })
	return r
}

// writeTrimmed copies b to out without the spaces tabwriter pads the
// last cell of a line with: no line ends in spaces.
func writeTrimmed(out io.Writer, b *bytes.Buffer) {
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		nl := strings.HasSuffix(line, "\n")
		io.WriteString(out, strings.TrimRight(line, " \n"))
		if nl {
			io.WriteString(out, "\n")
		}
	}
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeNodesText(out io.Writer, r nodesReport, color bool) {
	var w bytes.Buffer
	defer writeTrimmed(out, &w)
	bold, red, reset := "", "", ""
	if color {
		bold, red, reset = ansiBold, ansiRed, ansiReset
	}
	fmt.Fprintf(&w, "%sProject %s%s: %d of %d nodes reachable\n\n", bold, r.Project, reset, len(r.Nodes)-r.Unreachable, len(r.Nodes))
	tw := tabwriter.NewWriter(&w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTATE\tENGINE\tOS/ARCH\tCPUS\tMEMORY\tRESERVED\tCONTAINERS\tLABELS\t")
	for _, n := range r.Nodes {
		labels := orDash(labelsText(n.Labels))
		if !n.Reachable {
			fmt.Fprintf(tw, "%s\t%s\tunreachable\t-\t-\t-\t-\t-\t-\t%s\t\n", n.Name, n.Address, labels)
			continue
		}
		reserved := "-"
		if n.ReservedNanoCPUs > 0 || n.ReservedMemory > 0 {
			reserved = fmt.Sprintf("%s CPU, %s", cpusText(n.ReservedNanoCPUs), bytesText(n.ReservedMemory))
		}
		containers := fmt.Sprintf("%d + %d other", n.ProjectContainers, n.OtherContainers)
		state := "ready"
		if n.Drained {
			state = "drained"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s\t%d\t%s\t%s\t%s\t%s\t\n", n.Name, n.Address, state, n.Engine, n.OS, n.Arch, n.CPUs, bytesText(n.Memory), reserved, containers, labels)
	}
	tw.Flush()
	if r.Unreachable > 0 {
		fmt.Fprintf(&w, "\n%sUnreachable nodes%s:\n", red, reset)
		for _, n := range r.Nodes {
			if !n.Reachable {
				fmt.Fprintf(&w, "  %s\n", n.Error)
			}
		}
	}
}

func labelsText(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}

// cpusText is a CPU count: 0.5, 2.
func cpusText(nano int64) string { return strconv.FormatFloat(float64(nano)/1e9, 'f', -1, 64) }

// bytesText is a size in binary units with one decimal: 512 MiB, 7.6 GiB.
func bytesText(b int64) string {
	const ki = 1024
	if b < ki {
		return fmt.Sprintf("%d B", b)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	v, u := float64(b)/ki, 0
	for v >= ki && u < len(units)-1 {
		v /= ki
		u++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + units[u]
}
