package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
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
		name:     "status",
		synopsis: "Show the services and replicas running on the nodes",
		usage:    "status [options] [DIR]",
		help: `
Reads the configuration in DIR (default: the current directory), gathers the
live state of every node over SSH and the Docker API, and shows, like
'docker service ls' and 'docker service ps':
  - per service: desired and running replicas, image and ports (a service
    found only in container labels is marked "not in configuration");
  - per replica: its node, container, state, health and image;
  - every node that could not be reached, with the reason.
Nothing is changed on any node.

Exit status: 0 when every node was read, 1 when the configuration has
errors or any node is unreachable (everything that could be read is still
printed, as with Terraform's partial results).`,
		setup: func(fs *flag.FlagSet) func(context.Context, Streams, []string) error {
			cf := addConnFlags(fs)
			jsonOut := fs.Bool("json", false, "Print the status as a JSON document (format_version "+statusFormatVersion+").")
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
				if cfg.Project.Swarm != nil {
					return swarmStatus(ctx, s, cfg, cf, *jsonOut)
				}
				o, err := executor.Run(ctx, cfg, cf.request(s, cfg, executor.OpStatus), nil)
				if err != nil {
					return err
				}
				st := buildStatus(cfg, o.Live)
				if err := newStatusView(s, *jsonOut, *cf.noColor).Status(st); err != nil {
					return err
				}
				if st.Unreachable > 0 {
					return exitCode(1, nil)
				}
				return nil
			}
		},
	})
}

// statusFormatVersion is the version of status -json's document.
const statusFormatVersion = "1.0"

// statusReport is what status shows, for both views.
type statusReport struct {
	FormatVersion string          `json:"format_version"`
	Project       string          `json:"project"`
	Services      []statusService `json:"services"`
	Nodes         []statusNode    `json:"nodes"`
	Unreachable   int             `json:"unreachable_nodes"`
	// Locks are the project's locks held now, by node.
	Locks map[string]executor.LockInfo `json:"locks,omitempty"`
	// Applies are the latest audit records (newest first), each apply once.
	Applies []executor.AuditRecord `json:"applies,omitempty"`
	// Ingress holds, per node running the project's ingress proxy, the
	// routes it serves and each upstream's health.
	Ingress []statusIngress `json:"ingress,omitempty"`
}

// statusIngress is one node's ingress proxy.
type statusIngress struct {
	Node   string        `json:"node"`
	Loaded bool          `json:"loaded"`
	TLS    string        `json:"tls,omitempty"`
	Error  string        `json:"error,omitempty"`
	Routes []statusRoute `json:"routes"`
}

// statusRoute is one ingress endpoint: the port (host, path) a proxy
// serves and the replicas it balances over.
type statusRoute struct {
	Service   string           `json:"service"`
	Port      int              `json:"port"`
	Host      string           `json:"host,omitempty"`
	Path      string           `json:"path,omitempty"`
	Upstreams []statusUpstream `json:"upstreams"`
}

// statusUpstream is one upstream of a route: the replica behind it (if
// one of the project's containers publishes it), that container's state
// and health, and the proxy's counts.
type statusUpstream struct {
	Address string `json:"address"`
	// Replica is "SERVICE.N", or "" when no container publishes the address
	// (a stale route: the next apply removes it).
	Replica  string `json:"replica,omitempty"`
	Node     string `json:"node,omitempty"`
	State    string `json:"state"`
	Health   string `json:"health,omitempty"`
	Requests int    `json:"requests"`
	Fails    int    `json:"fails"`
}

type statusService struct {
	Name            string          `json:"name"`
	InConfiguration bool            `json:"in_configuration"`
	Image           string          `json:"image,omitempty"`
	DesiredReplicas int             `json:"desired_replicas"`
	RunningReplicas int             `json:"running_replicas"`
	Ports           []string        `json:"ports,omitempty"`
	Replicas        []statusReplica `json:"replicas"`
}

type statusReplica struct {
	Replica   int      `json:"replica"`
	Node      string   `json:"node"`
	Container string   `json:"container"`
	ID        string   `json:"id"`
	State     string   `json:"state"`
	Health    string   `json:"health,omitempty"`
	ExitCode  int      `json:"exit_code,omitempty"`
	Image     string   `json:"image,omitempty"`
	ImageID   string   `json:"image_id,omitempty"`
	Ports     []string `json:"ports,omitempty"`
	// Aside is set for a container renamed aside by an interrupted apply
	// (the next plan restores or discards it).
	Aside string `json:"aside_apply,omitempty"`
}

type statusNode struct {
	Name       string `json:"name"`
	Reachable  bool   `json:"reachable"`
	Error      string `json:"error,omitempty"`
	Engine     string `json:"engine_version,omitempty"`
	Containers int    `json:"containers"`
	// Removed: the node is no longer configured; the project's last apply
	// recorded it and the next one removes the project's containers there.
	// It never counts as unreachable.
	Removed bool `json:"removed,omitempty"`
}

// buildStatus joins the configuration's services with the gathered
// containers. It is pure, so the views are testable without nodes.
func buildStatus(cfg *config.Config, live *planner.Live) statusReport {
	st := statusReport{FormatVersion: statusFormatVersion, Project: cfg.Project.Name}
	if locks := executor.Locks(cfg.Project.Name, live); len(locks) > 0 {
		st.Locks = locks
	}
	st.Applies = executor.Audit(cfg.Project.Name, live)
	if len(st.Applies) > 10 {
		st.Applies = st.Applies[:10]
	}
	byName := map[string]*statusService{}
	for _, svc := range cfg.Services {
		ss := &statusService{Name: svc.Name, InConfiguration: true, DesiredReplicas: svc.Replicas, Image: svc.Image}
		if svc.Image == "" && svc.Build != nil {
			ss.Image = "build " + svc.Build.Context
		}
		for _, p := range svc.Ports {
			if p.Ingress() {
				ss.Ports = append(ss.Ports, fmt.Sprintf("ingress :%d%s->%d/%s", p.Published, routeSuffix(p.HostName, p.Path), p.Target, p.Protocol))
				continue
			}
			ss.Ports = append(ss.Ports, portText(p.HostIP, p.Published, p.Target, p.Protocol))
		}
		byName[svc.Name] = ss
	}
	var nodeNames []string
	for name := range live.Nodes {
		nodeNames = append(nodeNames, name)
	}
	for _, n := range cfg.Nodes {
		if live.Nodes[n.Name] == nil {
			nodeNames = append(nodeNames, n.Name)
		}
	}
	sort.Strings(nodeNames)
	for _, name := range nodeNames {
		ns := live.Nodes[name]
		if ns == nil {
			ns = &planner.NodeState{Name: name, Error: name + ": not gathered"}
		}
		sn := statusNode{Name: name, Reachable: ns.Reachable, Error: ns.Error, Engine: ns.Engine.Version, Containers: len(ns.Containers), Removed: ns.Removed}
		st.Nodes = append(st.Nodes, sn)
		if !ns.Reachable && !ns.Removed {
			st.Unreachable++
		}
	}
	obs := planner.Observe(cfg.Project.Name, live)
	st.Ingress = ingressStatus(nodeNames, live, obs)
	for _, svcName := range obs.Services() {
		if svcName == "" {
			continue // a project container berth keeps for itself
		}
		ss := byName[svcName]
		if ss == nil {
			ss = &statusService{Name: svcName}
			if planner.IsIngressProxy(svcName) {
				// berth's own: one router and one edge per ingress node.
				ss.InConfiguration = true
				ss.Image = cfg.IngressOf().Image
				ss.Ports = []string{"ingress router (host network)"}
				if svcName == planner.IngressEdgeService {
					ss.Ports = []string{"ingress edge (host network)"}
				}
				for _, row := range obs.Rows(svcName) {
					if row.AsideApply == "" {
						ss.DesiredReplicas++
					}
				}
			}
			byName[svcName] = ss
		}
		for _, row := range obs.Rows(svcName) {
			c := row.Container
			r := statusReplica{
				Replica: row.Index, Node: row.Node, Container: c.Name, ID: planner.ShortID(c.ID), State: c.State,
				Health: c.Health, Image: c.Image, ImageID: c.ImageID, Aside: row.AsideApply,
			}
			if c.State == "exited" || c.State == "dead" {
				r.ExitCode = c.ExitCode
			}
			// The count is of Docker's state "running", as the STATE
			// column shows it: a restarting replica (one that keeps
			// crashing) is not counted as up, though it holds its
			// resources (planner.Container.Running).
			if row.AsideApply == "" && c.State == "running" {
				ss.RunningReplicas++
			}
			for _, p := range c.Ports {
				r.Ports = append(r.Ports, portText(p.HostIP, p.HostPort, p.ContainerPort, p.Protocol))
			}
			r.Ports = dedupe(r.Ports)
			ss.Replicas = append(ss.Replicas, r)
		}
	}
	for _, ss := range byName {
		if !ss.InConfiguration {
			seen := map[string]bool{}
			for _, r := range ss.Replicas {
				if ss.Image == "" {
					ss.Image = r.Image
				}
				for _, p := range r.Ports {
					if !seen[p] {
						seen[p] = true
						ss.Ports = append(ss.Ports, p)
					}
				}
			}
			sort.Strings(ss.Ports)
		}
		if ss.Replicas == nil {
			ss.Replicas = []statusReplica{}
		}
		st.Services = append(st.Services, *ss)
	}
	sort.Slice(st.Services, func(i, j int) bool { return st.Services[i].Name < st.Services[j].Name })
	if st.Services == nil {
		st.Services = []statusService{}
	}
	return st
}

// ingressStatus lists each node's proxy with its routes, each upstream
// joined with the replica that publishes it.
func ingressStatus(nodes []string, live *planner.Live, obs *planner.Observed) []statusIngress {
	type who struct{ replica, node, state, health string }
	byAddr := map[string]who{}
	for _, svc := range obs.Services() {
		for _, row := range obs.Rows(svc) {
			if row.AsideApply != "" {
				continue
			}
			c := row.Container
			for _, b := range c.Ports {
				if b.HostIP != "" {
					byAddr[b.HostIP+":"+strconv.Itoa(b.HostPort)] = who{fmt.Sprintf("%s.%d", svc, row.Index), row.Node, c.State, c.Health}
				}
			}
		}
	}
	var out []statusIngress
	for _, name := range nodes {
		ns := live.Nodes[name]
		if ns == nil || ns.Ingress == nil {
			continue
		}
		in := statusIngress{Node: name, Loaded: ns.Ingress.Loaded, TLS: ns.Ingress.TLS, Error: ns.Ingress.Error, Routes: []statusRoute{}}
		load := map[string]planner.UpstreamLoad{}
		for _, u := range ns.Ingress.Upstreams {
			load[u.Address] = u
		}
		for _, r := range ns.Ingress.Routes {
			sr := statusRoute{Service: r.Service, Port: r.Port, Host: r.Host, Path: r.Path, Upstreams: []statusUpstream{}}
			for _, a := range r.Upstreams {
				w, ok := byAddr[a]
				u := statusUpstream{Address: a, Replica: w.replica, Node: w.node, State: w.state, Health: w.health,
					Requests: load[a].Requests, Fails: load[a].Fails}
				if !ok {
					u.State = "no container"
				}
				sr.Upstreams = append(sr.Upstreams, u)
			}
			in.Routes = append(in.Routes, sr)
		}
		out = append(out, in)
	}
	return out
}

// portText is Docker's notation: [IP:]PUBLISHED->TARGET/PROTO ("auto" for a
// port berth assigns).
func portText(ip string, published, target int, proto string) string {
	if proto == "" {
		proto = "tcp"
	}
	pub := "auto"
	if published > 0 {
		pub = strconv.Itoa(published)
	}
	if ip != "" && ip != "0.0.0.0" && ip != "::" {
		if strings.Contains(ip, ":") {
			ip = "[" + ip + "]"
		}
		pub = ip + ":" + pub
	}
	return fmt.Sprintf("%s->%d/%s", pub, target, proto)
}

func dedupe(l []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range l {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func writeStatusJSON(w io.Writer, st statusReport) error { return writeJSON(w, st) }

func writeStatusText(out io.Writer, st statusReport, color bool) {
	var w bytes.Buffer
	defer writeTrimmed(out, &w)
	// Colour stays out of the tables: escape codes would break tabwriter's
	// alignment.
	bold, red, reset := "", "", ""
	if color {
		bold, red, reset = ansiBold, ansiRed, ansiReset
	}
	configured := 0
	for _, n := range st.Nodes {
		if !n.Removed {
			configured++
		}
	}
	reachable := configured - st.Unreachable
	fmt.Fprintf(&w, "%sProject %s%s: %d of %d nodes reachable\n\n", bold, st.Project, reset, reachable, configured)

	if len(st.Services) == 0 {
		fmt.Fprintln(&w, "No services configured and no containers of this project found.")
	} else {
		tw := tabwriter.NewWriter(&w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tREPLICAS\tIMAGE\tPORTS\t")
		for _, ss := range st.Services {
			rep := fmt.Sprintf("%d/%d", ss.RunningReplicas, ss.DesiredReplicas)
			note := ""
			if !ss.InConfiguration {
				rep = fmt.Sprintf("%d/-", ss.RunningReplicas)
				note = "not in configuration"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ss.Name, rep, orDash(ss.Image), orDash(strings.Join(ss.Ports, ", ")), note)
		}
		tw.Flush()

		for _, ss := range st.Services {
			fmt.Fprintf(&w, "\n%s%s%s\n", bold, ss.Name, reset)
			if len(ss.Replicas) == 0 {
				fmt.Fprintln(&w, "  no containers")
				continue
			}
			tw := tabwriter.NewWriter(&w, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "  REPLICA\tNODE\tCONTAINER\tSTATE\tHEALTH\tIMAGE\t")
			for _, r := range ss.Replicas {
				state := r.State
				if r.ExitCode != 0 {
					state = fmt.Sprintf("%s (%d)", state, r.ExitCode)
				}
				health := orDash(r.Health)
				note := ""
				if r.Aside != "" {
					note = "left aside by interrupted apply " + r.Aside
				}
				fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Replica, r.Node, r.Container, state, health, orDash(r.Image), note)
			}
			tw.Flush()
		}
	}

	if len(st.Ingress) > 0 {
		fmt.Fprintf(&w, "\n%sIngress%s\n", bold, reset)
		tw := tabwriter.NewWriter(&w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "  NODE\tENDPOINT\tUPSTREAM\tREPLICA\tSTATE\tHEALTH\tIN FLIGHT\tFAILS\t")
		for _, in := range st.Ingress {
			if in.Error != "" || !in.Loaded {
				why := in.Error
				if why == "" {
					why = "no routes loaded by berth (the next apply pushes them)"
				}
				fmt.Fprintf(tw, "  %s\t-\t-\t-\t-\t-\t-\t-\t%s\n", in.Node, why)
			}
			for _, r := range in.Routes {
				ep := fmt.Sprintf("%s :%d%s", r.Service, r.Port, routeSuffix(r.Host, r.Path))
				if len(r.Upstreams) == 0 {
					fmt.Fprintf(tw, "  %s\t%s\t-\t-\t-\t-\t-\t-\tno upstream\n", in.Node, ep)
				}
				for _, u := range r.Upstreams {
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", in.Node, ep, u.Address, orDash(u.Replica), u.State, orDash(u.Health), u.Requests, u.Fails)
				}
			}
		}
		tw.Flush()
	}

	if len(st.Locks) > 0 {
		nodes := make([]string, 0, len(st.Locks))
		for n := range st.Locks {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		fmt.Fprintf(&w, "\n%sLocked%s:\n", bold, reset)
		for _, n := range nodes {
			li := st.Locks[n]
			stale := ""
			if li.Stale() {
				stale = " (its process is gone: the next apply takes it over)"
			}
			fmt.Fprintf(&w, "  %s: by %s%s\n", n, li, stale)
		}
	}
	if len(st.Applies) > 0 {
		fmt.Fprintf(&w, "\n%sRecent applies%s:\n", bold, reset)
		tw := tabwriter.NewWriter(&w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "  WHEN\tWHO\tAPPLY\tPLAN\tACTIONS\tRESULT\t")
		for _, a := range st.Applies {
			result := a.Result
			if a.RollbackTo != "" {
				result += " (rollback to " + a.RollbackTo + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\t\n", a.Started.UTC().Format("2006-01-02 15:04:05Z"), a.Holder, a.ApplyID, orDash(a.PlanID), a.Actions, result)
		}
		tw.Flush()
	}

	if st.Unreachable > 0 {
		fmt.Fprintf(&w, "\n%sUnreachable nodes%s (their containers are not shown or counted):\n", red, reset)
		for _, n := range st.Nodes {
			if !n.Reachable && !n.Removed {
				fmt.Fprintf(&w, "  %s\n", n.Error)
			}
		}
	}
	var removed []string
	for _, n := range st.Nodes {
		switch {
		case n.Removed && n.Reachable:
			removed = append(removed, fmt.Sprintf("  %s: %d container(s) of the project", n.Name, n.Containers))
		case n.Removed:
			removed = append(removed, fmt.Sprintf("  %s: unreachable (%s)", n.Name, n.Error))
		}
	}
	if len(removed) > 0 {
		fmt.Fprintf(&w, "\nNodes removed from the configuration (the next apply removes the project's containers there):\n%s\n", strings.Join(removed, "\n"))
	}
}

// routeSuffix is " HOST/PATH" of an ingress route, or "".
func routeSuffix(host, path string) string {
	if host == "" && path == "" {
		return ""
	}
	return " " + host + path
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
