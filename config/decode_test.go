package config

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

const fullConfig = `
project "shop" {
  ssh {
    user          = "deploy"
    port          = 2222
    identity_file = "~/.ssh/id_ed25519"
    known_hosts   = "~/.ssh/berth_known_hosts"
  }
}

node "bastion" {
  address = "bastion.example.com"
  user    = "ops"
}

node "web-1" {
  address       = "10.0.0.1"
  port          = 22
  host_key      = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
  jump          = "bastion"
  docker_socket = "/run/user/1000/docker.sock"
  labels = {
    zone = "a"
  }
}

node "laptop" {
  address = "local"
}

service "db" {
  image = "postgres:16"
}

service "web" {
  image             = "ghcr.io/shop/web:1.2"
  replicas          = 2
  command           = ["serve", "--port", "8080"]
  entrypoint        = ["/init"]
  env               = { MODE = "prod", WORKERS = 4 }
  labels            = { team = "shop" }
  restart           = "always"
  stop_grace_period = "30s"
  depends_on        = ["db"]
  user              = "1000:1000"
  working_dir       = "/app"
  hostname          = "web"
  extra_hosts       = ["db.internal:10.0.0.5"]
  pull              = "always"

  port {
    target    = 8080
    published = 80
  }
  port {
    target   = 9090
    protocol = "udp"
    host_ip  = "127.0.0.1"
  }

  placement {
    constraint   = node.labels.zone == "a"
    spread       = node.name
    max_per_node = 2
  }

  resources {
    cpus   = 0.5
    memory = "256MiB"
  }

  health {
    http         = "/healthz"
    interval     = "2s"
    timeout      = "1s"
    retries      = 5
    start_period = "10s"
  }

  update {
    parallelism    = 2
    order          = "stop-first"
    failure_action = "pause"
    monitor        = "20s"
    delay          = "1s"
  }

  volume {
    source    = "web-cache"
    target    = "/cache"
    read_only = true
  }
  volume {
    source = "/etc/ssl"
    target = "/etc/ssl"
  }

  build {
    context    = "./web"
    dockerfile = "Dockerfile.prod"
    args       = { VERSION = "1.2" }
    target     = "runtime"
  }
}
`

func TestDecodeEverything(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": fullConfig})
	cfg, diags := Load(dir, Inputs{})
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", renderAll(diags))
	}
	if cfg.Project.Name != "shop" || cfg.Project.SSH != (SSHDefaults{User: "deploy", Port: 2222, IdentityFile: "~/.ssh/id_ed25519", KnownHosts: "~/.ssh/berth_known_hosts"}) {
		t.Errorf("project: %+v", cfg.Project)
	}
	ignoreRanges := cmpopts.IgnoreTypes(hcl.Range{})
	wantNodes := []*Node{
		{Name: "bastion", Address: "bastion.example.com", Port: 2222, User: "ops", IdentityFile: "~/.ssh/id_ed25519", KnownHosts: "~/.ssh/berth_known_hosts", DockerSocket: DefaultDockerSocket, Labels: map[string]string{}, PrivateAddress: "bastion.example.com"},
		{Name: "laptop", Address: "local", DockerSocket: DefaultDockerSocket, Labels: map[string]string{}, PrivateAddress: "127.0.0.1"},
		{Name: "web-1", Address: "10.0.0.1", Port: 22, User: "deploy", IdentityFile: "~/.ssh/id_ed25519", KnownHosts: "~/.ssh/berth_known_hosts",
			HostKey: "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", Jump: "bastion", DockerSocket: "/run/user/1000/docker.sock", Labels: map[string]string{"zone": "a"}, PrivateAddress: "10.0.0.1"},
	}
	if diff := cmp.Diff(wantNodes, cfg.Nodes, ignoreRanges); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}

	wantDB := &Service{
		Name: "db", Image: "postgres:16", Pull: DefaultPull, Replicas: DefaultReplicas,
		Env: map[string]EnvVar{}, Labels: map[string]string{}, Restart: DefaultRestart, StopGracePeriod: DefaultStopGracePeriod,
		Update: Update{Parallelism: DefaultUpdateParallelism, Order: DefaultUpdateOrder, FailureAction: DefaultFailureAction, Monitor: DefaultUpdateMonitor, Delay: DefaultUpdateDelay},
	}
	wantWeb := &Service{
		Name: "web", Image: "ghcr.io/shop/web:1.2", Pull: "always", Replicas: 2,
		Build:           &Build{Context: filepath.Join(dir, "web"), Dockerfile: "Dockerfile.prod", Args: map[string]string{"VERSION": "1.2"}, Target: "runtime"},
		Command:         []string{"serve", "--port", "8080"},
		Entrypoint:      []string{"/init"},
		Env:             map[string]EnvVar{"MODE": {Value: "prod"}, "WORKERS": {Value: "4"}},
		Labels:          map[string]string{"team": "shop"},
		Restart:         "always",
		StopGracePeriod: 30 * time.Second,
		DependsOn:       []string{"db"},
		User:            "1000:1000", WorkingDir: "/app", Hostname: "web",
		ExtraHosts: []string{"db.internal:10.0.0.5"},
		Ports: []Port{
			{Target: 8080, Published: 80, Protocol: "tcp"},
			{Target: 9090, Protocol: "udp", HostIP: "127.0.0.1"},
		},
		Placement: Placement{MaxPerNode: 2},
		Resources: Resources{NanoCPUs: 500_000_000, MemoryBytes: 256 << 20},
		Health:    &Health{HTTP: "/healthz", Port: 8080, Interval: 2 * time.Second, Timeout: time.Second, Retries: 5, StartPeriod: 10 * time.Second},
		Update:    Update{Parallelism: 2, Order: "stop-first", FailureAction: "pause", Monitor: 20 * time.Second, Delay: time.Second},
		Volumes:   []Volume{{Source: "web-cache", Target: "/cache", ReadOnly: true}, {Source: "/etc/ssl", Target: "/etc/ssl"}},
	}
	opts := cmp.Options{ignoreRanges, cmpopts.IgnoreFields(Service{}, "AttrRanges"), cmpopts.IgnoreUnexported(Service{}), cmpopts.IgnoreFields(Placement{}, "Constraint", "Spread")}
	if diff := cmp.Diff([]*Service{wantDB, wantWeb}, cfg.Services, opts); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}

	web := cfg.Service("web")
	for path, line := range map[string]int{
		"image": 36, "replicas": 37, "port[0]": 51, "port[0].published": 53, "port[1].host_ip": 58,
		"placement": 61, "placement.constraint": 62, "placement.spread": 63, "placement.max_per_node": 64,
		"resources.cpus": 68, "resources.memory": 69, "health.http": 73, "update.order": 82,
		"volume[1]": 93, "volume[1].source": 94, "build.context": 99,
	} {
		r, ok := web.AttrRanges[path]
		if !ok || r.Start.Line != line {
			t.Errorf("AttrRanges[%q] = %v (set %v), want line %d", path, r, ok, line)
		}
	}
	if web.Range("nope") != web.DeclRange {
		t.Errorf("Range of an unset path is not the block")
	}

	// The placement expressions evaluate per node with only node in scope.
	c, s := web.Placement.Constraint, web.Placement.Spread
	node := NodeValue(NodeInfo{Name: "web-1", Labels: map[string]string{"zone": "a"}, CPUs: 4})
	if v, d := c.Value(PlacementContext(node)); d.HasErrors() || !v.RawEquals(cty.True) {
		t.Errorf("constraint on web-1: %#v %s", v, d)
	}
	if v, d := s.Value(PlacementContext(node)); d.HasErrors() || !v.RawEquals(cty.StringVal("web-1")) {
		t.Errorf("spread on web-1: %#v %s", v, d)
	}
}

func TestDefaultProjectName(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/My Shop":     "my-shop",
		"/srv/shop_2":      "shop_2",
		"/srv/--x--":       "x",
		"/srv/Über.App":    "ber-app",
		"/srv/!!!":         "berth",
		"/srv/production.": "production",
	} {
		if got := defaultProjectName(in); got != want || !ValidName(got) {
			t.Errorf("defaultProjectName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNoConfigFiles(t *testing.T) {
	dir := writeConfig(t, map[string]string{"prod.vars.hcl": `x = 1`, "README.md": "hi"})
	cfg, diags := Load(dir, Inputs{})
	if cfg != nil || len(diags) != 1 || diags[0].Summary != "No configuration files" {
		t.Errorf("got %v, %s", cfg, renderAll(diags))
	}
}

func TestImageReferences(t *testing.T) {
	for _, ok := range []string{"nginx", "nginx:1.27", "library/nginx:latest", "ghcr.io/org/app:v2", "localhost:5000/app",
		"registry.example.com:5000/team/app:1.0-rc.1", "app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "my_app__x", "a-b.c"} {
		if !validImage(ok) {
			t.Errorf("validImage(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "Nginx", "my app", "nginx:", ":1", "app:tag with space", "a//b", "-x"} {
		if validImage(bad) {
			t.Errorf("validImage(%q) = true", bad)
		}
	}
}
