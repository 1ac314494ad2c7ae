package main

import (
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/planner"
)

// ingressStatusFixture: web behind ingress port 18080 on two nodes, both
// running the project's proxy; node2's table still names a removed
// container, and node1's replica is unhealthy.
func ingressStatusFixture() (*config.Config, *planner.Live) {
	cfg := &config.Config{
		Project: config.Project{Name: "shop"},
		Nodes:   []*config.Node{{Name: "node1", Address: "10.0.0.11"}, {Name: "node2", Address: "10.0.0.12"}},
		Services: []*config.Service{
			{Name: "web", Image: "berth-test/echo:v2", Replicas: 2, Ports: []config.Port{{Target: 8080, Published: 18080, Protocol: "tcp", Mode: "ingress", Path: "/app"}}},
		},
	}
	lbl := func(svc, replica string) map[string]string {
		return map[string]string{planner.LabelProject: "shop", planner.LabelService: svc, planner.LabelReplica: replica}
	}
	proxy := func(node, id string) planner.Container {
		return planner.Container{ID: id, Name: "shop-ingress", Labels: lbl(planner.IngressService, node[len(node)-1:]), Image: "caddy:2.11.9", State: "running"}
	}
	route := func(ups ...string) []planner.Route {
		return []planner.Route{{Service: "web", Port: 18080, Path: "/app", Upstreams: ups}}
	}
	live := &planner.Live{Nodes: map[string]*planner.NodeState{
		"node1": {Name: "node1", Reachable: true, Containers: []planner.Container{
			proxy("node1", "1111111111111111"),
			{ID: "aaaaaaaaaaaaaaaaaaaa", Name: "shop-web-1", Labels: lbl("web", "1"), Image: "berth-test/echo:v2", State: "running", Health: "unhealthy",
				Ports: []planner.PortBinding{{HostIP: "10.0.0.11", HostPort: 30000, ContainerPort: 8080, Protocol: "tcp"}}},
		}, Ingress: &planner.IngressState{Loaded: true, TLS: "off", Routes: route("10.0.0.11:30000", "10.0.0.12:30000"),
			Upstreams: []planner.UpstreamLoad{{Address: "10.0.0.11:30000", Requests: 2, Fails: 1}}}},
		"node2": {Name: "node2", Reachable: true, Containers: []planner.Container{
			proxy("node2", "2222222222222222"),
			{ID: "bbbbbbbbbbbbbbbbbbbb", Name: "shop-web-2", Labels: lbl("web", "2"), Image: "berth-test/echo:v2", State: "running",
				Ports: []planner.PortBinding{{HostIP: "10.0.0.12", HostPort: 30000, ContainerPort: 8080, Protocol: "tcp"}}},
		}, Ingress: &planner.IngressState{Loaded: true, TLS: "off", Routes: route("10.0.0.11:30000", "10.0.0.12:30000", "10.0.0.12:30001")}},
	}}
	return cfg, live
}

// The status views with ingress: each node's endpoints, their upstreams
// and the replica, state, health and proxy counts of each.
func TestStatusIngressViewsGolden(t *testing.T) {
	cfg, live := ingressStatusFixture()
	st := buildStatus(cfg, live)
	for _, tt := range []struct {
		file string
		json bool
	}{{"ingress.txt", false}, {"ingress.json", true}} {
		s, out, _ := viewStreams(false)
		if err := newStatusView(s, tt.json, false).Status(st); err != nil {
			t.Fatal(err)
		}
		golden(t, "status/"+tt.file, out.String())
	}
}
