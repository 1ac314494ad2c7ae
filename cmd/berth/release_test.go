package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestVersionOf(t *testing.T) {
	bi := func(main string, settings ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/berth-dev/berth", Version: main}}
		for i := 0; i+1 < len(settings); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return info
	}
	for _, c := range []struct {
		name            string
		version, commit string
		info            *debug.BuildInfo
		wantV, wantC    string
	}{
		{"release build", "1.4.0", "abc1234", bi("(devel)"), "1.4.0", "abc1234"},
		{"go install @version", defaultVersion, "", bi("v1.4.0"), "v1.4.0", ""},
		{"checkout", defaultVersion, "", bi("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), defaultVersion, "0123456789ab"},
		{"dirty checkout", defaultVersion, "", bi("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"), defaultVersion, "0123456789ab-dirty"},
		{"ldflags win over build info", "1.4.0", "abc1234", bi("v9.9.9", "vcs.revision", "ffffffffffffffff"), "1.4.0", "abc1234"},
		{"no build info", defaultVersion, "", nil, defaultVersion, ""},
	} {
		v, cm := versionOf(c.version, c.commit, c.info)
		if v != c.wantV || cm != c.wantC {
			t.Errorf("%s: got %q %q, want %q %q", c.name, v, cm, c.wantV, c.wantC)
		}
	}
}

// goreleaserConfig is the part of .goreleaser.yaml the test checks.
type goreleaserConfig struct {
	Version int `yaml:"version"`
	Builds  []struct {
		Main    string   `yaml:"main"`
		Binary  string   `yaml:"binary"`
		Env     []string `yaml:"env"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
		Flags   []string `yaml:"flags"`
		Ldflags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	Archives []struct {
		Formats []string `yaml:"formats"`
	} `yaml:"archives"`
	Checksum struct {
		Algorithm string `yaml:"algorithm"`
	} `yaml:"checksum"`
}

// TestGoreleaserConfig checks .goreleaser.yaml against the release
// matrix and the code: every -X it sets names a variable of package main,
// and a binary built with those ldflags (templates filled in) reports them
// in `berth version`.
func TestGoreleaserConfig(t *testing.T) {
	b, err := os.ReadFile("../../.goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg goreleaserConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if cfg.Version != 2 || len(cfg.Builds) != 1 || len(cfg.Archives) != 1 {
		t.Fatalf(".goreleaser.yaml: want version 2, one build, one archive; got %+v", cfg)
	}
	bd := cfg.Builds[0]
	if bd.Main != "./cmd/berth" || bd.Binary != "berth" || !slices.Contains(bd.Env, "CGO_ENABLED=0") {
		t.Errorf("build: main %q binary %q env %v", bd.Main, bd.Binary, bd.Env)
	}
	for _, want := range [][2][]string{{bd.Goos, {"darwin", "linux"}}, {bd.Goarch, {"amd64", "arm64"}}} {
		got := slices.Sorted(slices.Values(want[0]))
		if !slices.Equal(got, want[1]) {
			t.Errorf("build targets %v, want %v", got, want[1])
		}
	}
	if !slices.Contains(cfg.Archives[0].Formats, "tar.gz") || cfg.Checksum.Algorithm != "sha256" {
		t.Errorf("archives %v checksum %q", cfg.Archives[0].Formats, cfg.Checksum.Algorithm)
	}

	ld := strings.Join(bd.Ldflags, " ")
	x := regexp.MustCompile(`-X main\.(\w+)=(\S+)`).FindAllStringSubmatch(ld, -1)
	vars := map[string]string{}
	for _, m := range x {
		vars[m[1]] = m[2]
	}
	if vars["Version"] == "" || vars["commit"] == "" {
		t.Fatalf("ldflags %q must set main.Version and main.commit", ld)
	}
	filled := strings.NewReplacer("{{ .Version }}", "9.8.7", "{{ .ShortCommit }}", "feedbee").Replace(ld)
	if strings.Contains(filled, "{{") {
		t.Fatalf("ldflags use a template the test does not fill: %q", ld)
	}
	if testing.Short() {
		t.Skip("-short: not building the release binary")
	}
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command("go", append([]string{"build", "-o", bin}, append(bd.Flags, "-ldflags", filled, ".")...)...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build with the release ldflags: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("berth version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "berth 9.8.7 commit feedbee (") {
		t.Errorf("berth version printed %q, want it to start with %q", out, "berth 9.8.7 commit feedbee (")
	}
}
