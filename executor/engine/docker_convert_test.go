package engine

import (
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/planner"
)

func TestDockerConfig(t *testing.T) {
	spec := &planner.ContainerSpec{
		Name:       "web-1",
		Image:      "berth-test/echo:v1",
		Command:    []string{"serve", "-v"},
		Entrypoint: []string{"/bin/echo-server"},
		Env: []planner.EnvVar{
			{Name: "A", Value: "1"},
			{Name: "TOKEN", Sensitive: true, Hash: "h", Secret: "s3cret"},
		},
		Labels: map[string]string{planner.LabelProject: "p", planner.LabelService: "web", planner.LabelReplica: "1", planner.LabelHash: "h"},
		Ports: []planner.PortSpec{
			{Target: 8080, Published: 30001, Protocol: "tcp"},
			{Target: 8080, Published: 30002, Protocol: "tcp", HostIP: "127.0.0.1"},
			{Target: 53, Published: 5353, Protocol: "udp"},
		},
		Volumes: []planner.VolumeSpec{
			{Source: "data", Target: "/data"},
			{Source: "/etc/app", Target: "/conf", ReadOnly: true, Bind: true},
		},
		Restart:          "on-failure",
		StopGraceSeconds: 7,
		NanoCPUs:         500_000_000,
		MemoryBytes:      64 << 20,
		Health: &planner.HealthSpec{
			Cmd: []string{"/bin/check", "--quick"}, IntervalMillis: 1000, TimeoutMillis: 2000, Retries: 3, StartPeriodMillis: 500,
		},
		User:       "1000:1000",
		WorkingDir: "/srv",
		Hostname:   "web",
		ExtraHosts: []string{"db:10.0.0.5"},
	}
	cfg, hc, err := dockerConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	seven := 7
	wantCfg := &container.Config{
		Image:      "berth-test/echo:v1",
		Cmd:        []string{"serve", "-v"},
		Entrypoint: []string{"/bin/echo-server"},
		Env:        []string{"A=1", "TOKEN=s3cret"},
		Labels:     spec.Labels,
		User:       "1000:1000",
		WorkingDir: "/srv",
		Hostname:   "web",
		ExposedPorts: nat.PortSet{
			"8080/tcp": {},
			"53/udp":   {},
		},
		StopTimeout: &seven,
		Healthcheck: &container.HealthConfig{
			Test:        []string{"CMD", "/bin/check", "--quick"},
			Interval:    time.Second,
			Timeout:     2 * time.Second,
			Retries:     3,
			StartPeriod: 500 * time.Millisecond,
		},
	}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Errorf("config:\n got %+v\nwant %+v", cfg, wantCfg)
	}
	wantHC := &container.HostConfig{
		Binds: []string{"/etc/app:/conf:ro"},
		Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "data", Target: "/data",
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{planner.LabelProject: "p", planner.LabelService: "web", planner.LabelReplica: "1"}}}},
		PortBindings: nat.PortMap{
			"8080/tcp": {{HostPort: "30001"}, {HostIP: "127.0.0.1", HostPort: "30002"}},
			"53/udp":   {{HostPort: "5353"}},
		},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure},
		ExtraHosts:    []string{"db:10.0.0.5"},
		Resources:     container.Resources{NanoCPUs: 500_000_000, Memory: 64 << 20},
	}
	if !reflect.DeepEqual(hc, wantHC) {
		t.Errorf("host config:\n got %+v\nwant %+v", hc, wantHC)
	}
}

func TestDockerConfigMinimal(t *testing.T) {
	// Nothing the spec does not set: the image's defaults stay.
	cfg, hc, err := dockerConfig(&planner.ContainerSpec{Image: "x", Restart: "unless-stopped", StopGraceSeconds: 10})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cmd != nil || cfg.Entrypoint != nil || cfg.Env != nil || cfg.ExposedPorts != nil || cfg.Healthcheck != nil {
		t.Errorf("unexpected defaults set: %+v", cfg)
	}
	if hc.PortBindings != nil || hc.Binds != nil || hc.Mounts != nil || hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("unexpected host config: %+v", hc)
	}
	if *cfg.StopTimeout != 10 {
		t.Errorf("stop timeout %d", *cfg.StopTimeout)
	}
}

func TestDockerConfigHTTPHealthHasNoEngineHealthcheck(t *testing.T) {
	for _, h := range []*planner.HealthSpec{{HTTP: "/healthz", Port: 8080}, {TCP: true, Port: 8080}} {
		cfg, _, err := dockerConfig(&planner.ContainerSpec{Image: "x", Health: h})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Healthcheck != nil {
			t.Errorf("health %+v got an engine healthcheck %+v", h, cfg.Healthcheck)
		}
	}
}

func TestDockerConfigRestartPolicies(t *testing.T) {
	for in, want := range map[string]container.RestartPolicyMode{
		"": "no", "no": "no", "always": "always", "on-failure": "on-failure", "unless-stopped": "unless-stopped",
	} {
		_, hc, err := dockerConfig(&planner.ContainerSpec{Image: "x", Restart: in})
		if err != nil {
			t.Fatal(err)
		}
		if hc.RestartPolicy.Name != want {
			t.Errorf("%q: got %q", in, hc.RestartPolicy.Name)
		}
	}
}

func TestDockerConfigErrors(t *testing.T) {
	for name, spec := range map[string]*planner.ContainerSpec{
		"no image":      {},
		"bad restart":   {Image: "x", Restart: "sometimes"},
		"bad protocol":  {Image: "x", Ports: []planner.PortSpec{{Target: 1, Protocol: "sctp"}}},
		"relative bind": {Image: "x", Volumes: []planner.VolumeSpec{{Source: "rel", Target: "/x", Bind: true}}},
		"slash volume":  {Image: "x", Volumes: []planner.VolumeSpec{{Source: "/abs", Target: "/x"}}},
		"no target":     {Image: "x", Volumes: []planner.VolumeSpec{{Source: "v"}}},
	} {
		if _, _, err := dockerConfig(spec); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDockerUpdate(t *testing.T) {
	u := dockerUpdate(&planner.ContainerSpec{Restart: "always", NanoCPUs: 1e9, MemoryBytes: 100})
	want := container.UpdateConfig{
		Resources:     container.Resources{NanoCPUs: 1e9, Memory: 100, MemorySwap: 200},
		RestartPolicy: container.RestartPolicy{Name: "always"},
	}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("got %+v want %+v", u, want)
	}
}

func TestHealthFromStatus(t *testing.T) {
	for in, want := range map[string]string{
		"Up 2 minutes (healthy)":         "healthy",
		"Up 2 minutes (unhealthy)":       "unhealthy",
		"Up 1 second (health: starting)": "starting",
		"Up 2 minutes":                   "",
		"Exited (1) 3 seconds ago":       "",
		"Restarting (1) 2 seconds ago":   "",
	} {
		if got := healthFromStatus(in); got != want {
			t.Errorf("%q: got %q want %q", in, got, want)
		}
	}
}
