// Package ci holds the example CI pipelines; its tests derive shell
// scripts from each workflow file's steps and run them: the check job
// always, the plan and apply jobs against the test cluster (BERTH_E2E=1).
package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// githubWorkflow is the part of the GitHub workflow the tests read.
type githubWorkflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		If    string            `yaml:"if"`
		Env   map[string]string `yaml:"env"`
		Steps []githubStep      `yaml:"steps"`
	} `yaml:"jobs"`
}

type githubStep struct {
	Name string            `yaml:"name"`
	If   string            `yaml:"if"`
	Uses string            `yaml:"uses"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
	Run  string            `yaml:"run"`
}

func readGithub(t *testing.T) githubWorkflow {
	t.Helper()
	b, err := os.ReadFile(".github/workflows/berth.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf githubWorkflow
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	return wf
}

// githubJobs is each job's run: steps, in order, from the GitHub workflow.
func githubJobs(t *testing.T) map[string][]string {
	out := map[string][]string{}
	for name, j := range readGithub(t).Jobs {
		for _, s := range j.Steps {
			if s.Run != "" {
				out[name] = append(out[name], s.Run)
			}
		}
	}
	return out
}

// gitlabJobs is each job's script: lines (anchors resolved, nested lists
// flattened) from the GitLab pipeline.
func gitlabJobs(t *testing.T) map[string][]string {
	out := map[string][]string{}
	for name, v := range readGitlab(t) {
		if j, ok := v.(map[string]any); ok && j["script"] != nil {
			out[name] = flatten(j["script"])
		}
	}
	return out
}

// The pipelines keep host keys pinned and apply only a saved plan, and
// a refused (stale) plan leads to a new plan, never a blind apply.
func TestPipelinesRules(t *testing.T) {
	for name, jobs := range map[string]map[string][]string{"github": githubJobs(t), "gitlab": gitlabJobs(t)} {
		all := ""
		for _, steps := range jobs {
			all += strings.Join(steps, "\n") + "\n"
		}
		for _, bad := range []string{"StrictHostKeyChecking", "-trust-new-hosts", "ssh-keyscan", "-auto-approve"} {
			if strings.Contains(all, bad) {
				t.Errorf("%s: %q in a script", name, bad)
			}
		}
		plan := strings.Join(jobs["plan"], "\n")
		for _, want := range []string{"-detailed-exitcode", "-out plan.bin", "show -markdown plan.bin > comment.md"} {
			if !strings.Contains(plan, want) {
				t.Errorf("%s plan job lacks %q", name, want)
			}
		}
		apply := strings.Join(jobs["apply"], "\n")
		if !strings.Contains(apply, "if ! berth apply -no-color plan.bin 2> apply.err; then") ||
			!strings.Contains(apply, `grep -q "stale plan" apply.err || exit 1`) || strings.Count(apply, "berth plan") != 2 {
			t.Errorf("%s apply job does not apply the saved plan and re-plan when it is refused:\n%s", name, apply)
		}
		if !strings.Contains(all, "BERTH_KNOWN_HOSTS") {
			t.Errorf("%s: known_hosts is not the committed file", name)
		}
	}
}

// The check job of each pipeline, as a script, passes against the example
// configuration with no credentials and no network.
func TestPipelinesCheckJob(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "berth"), "github.com/berth-dev/berth/cmd/berth")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	for name, jobs := range map[string]map[string][]string{"github": githubJobs(t), "gitlab": gitlabJobs(t)} {
		// The install step is the one line replaced: the test puts the
		// berth of this tree first on PATH instead of a released one.
		var steps []string
		for _, st := range jobs["check"] {
			if !strings.HasPrefix(st, "go install github.com/berth-dev/berth/cmd/berth") {
				steps = append(steps, st)
			}
		}
		script := "set -eu\n" + strings.Join(steps, "\n") + "\n"
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "BERTH_DIR=examples/ci", "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s check job: %v\n%s\n--- script\n%s", name, err, out, script)
		}
	}
}
