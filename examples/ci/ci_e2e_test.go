package ci

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/internal/testcluster"
)

// The pipelines, run against the test cluster as the shell scripts their
// files hold: the pull request's jobs (fmt -check, validate, plan
// -detailed-exitcode -out exiting 2, the Markdown comment posted, the plan
// file kept as the artifact), then the merge's apply job applying that very
// plan file. Then the stale path: a second pull request's plan, a replica
// stopped by hand on node2, and the merge's apply job, whose apply of the
// saved plan is refused naming node2, which plans again and applies; the
// cluster ends as configured (a plan afterwards has no changes).
//
// What runs in CI but not here: the actions (checkout, setup-go,
// upload-artifact) are done by the test (the checkout is a git repository
// in a temporary directory, the artifact a directory the test copies the
// listed paths to), `go install` is replaced by this tree's berth on PATH,
// and gh and curl are fakes that serve the GitHub and GitLab API calls the
// scripts make (the PR's plan artifact, the comment) from that directory.
//
// The test holds the cluster exclusively: a saved plan is refused when
// anything on a node changed since, other projects' containers with
// published ports included, so tests running meanwhile in other processes
// would make the first plan stale too.
func TestPipelinesAgainstCluster(t *testing.T) {
	c := testcluster.Require(t)
	c.Exclusive(t)
	berthBin := testcluster.BuildBerth(t)
	for _, tc := range []struct {
		name string
		port int
	}{{"github", 18250}, {"gitlab", 18251}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(t, c, berthBin, tc.name, tc.port)

			// 1. First pull request: deploy v1.
			p.commit(p.config(testcluster.ImageV1), "deploy web v1")
			p.prJobs()
			if p.artifact("plan.bin") == "" || p.artifact("plan.tree") == "" {
				t.Fatalf("the plan job kept no plan.bin / plan.tree artifact")
			}
			p.mergeJob()
			if !strings.Contains(p.log, "applying the plan saved for the") || strings.Contains(p.log, "stale plan:") ||
				strings.Contains(p.log, "planning now") {
				t.Fatalf("the apply job did not apply the pull request's plan as saved:\n%s", p.log)
			}
			p.expectServing("echo v1")

			// 2. Second pull request (v2), then a replica stopped by hand on
			// node2 before the merge: the saved plan is stale.
			p.commit(p.config(testcluster.ImageV2), "update web to v2")
			p.prJobs()
			p.stopReplica("node2")
			p.mergeJob()
			stale := strings.Index(p.log, "stale plan:")
			replan := strings.Index(p.log, "the saved plan is stale; planning again")
			if stale < 0 || replan < stale || !regexp.MustCompile(`(?m)^  node node2:`).MatchString(p.log) {
				t.Fatalf("the apply job did not refuse the stale plan naming node2, then plan again:\n%s", p.log)
			}
			if m := regexp.MustCompile(`(?m)^  node (\S+):`).FindAllStringSubmatch(p.log, -1); len(m) != 1 {
				t.Errorf("the stale plan error names %d nodes, want node2 only:\n%s", len(m), p.log)
			}
			p.expectServing("echo v2")
			p.expectNoChanges()
		})
	}
}

// pipeline is one CI system's pipeline file run against the cluster.
type pipeline struct {
	t         *testing.T
	c         *testcluster.Cluster
	kind      string // github or gitlab
	port      int
	project   string
	ws        string // the checkout (a git repository)
	store     string // the plan job's artifact, as the apply job fetches it
	fakes     string // a directory with berth, gh and curl, first on PATH
	calls     string // the fakes' log; the posted comment is calls + ".comment"
	mr        int    // the pull / merge request number
	prHead    string // its head commit
	log       string // the last job's output
	github    githubWorkflow
	gitlabDoc map[string]any
}

func newPipeline(t *testing.T, c *testcluster.Cluster, berthBin, kind string, port int) *pipeline {
	t.Helper()
	p := &pipeline{t: t, c: c, kind: kind, port: port, project: testcluster.ProjectName(t),
		ws: filepath.Join(t.TempDir(), "checkout"), store: t.TempDir(), fakes: t.TempDir()}
	p.calls = filepath.Join(t.TempDir(), "calls")
	t.Cleanup(func() { c.RemoveProject(t, p.project) })
	if kind == "github" {
		p.github = readGithub(t)
	} else {
		p.gitlabDoc = readGitlab(t)
	}
	if err := os.Symlink(berthBin, filepath.Join(p.fakes, "berth")); err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{"gh": fakeGH, "curl": fakeCurl} {
		if err := os.WriteFile(filepath.Join(p.fakes, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(p.ws, "examples", "ci"), 0o755); err != nil {
		t.Fatal(err)
	}
	kh, err := os.ReadFile(c.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	p.write("examples/ci/known_hosts", "# the test cluster's host keys\n"+string(kh))
	p.git("init", "-q", "-b", "main")
	return p
}

// config is the example configuration for the cluster's nodes: the key and
// known_hosts are where the pipelines' ssh steps put them.
func (p *pipeline) config(image string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `project %q {
  ssh {
    user          = %q
    identity_file = "~/.ssh/berth_ci"
    known_hosts   = "~/.ssh/known_hosts"
  }
}
`, p.project, p.c.User)
	for i, n := range p.c.Nodes {
		fmt.Fprintf(&b, "\nnode %q {\n  address = %q\n  labels  = { zone = %q }\n}\n", n.Name, n.Addr, string(rune('a'+i)))
	}
	fmt.Fprintf(&b, `
service "web" {
  image             = %q
  replicas          = 3
  stop_grace_period = "1s"

  port {
    target    = 8080
    published = %d
  }

  placement {
    spread       = node.labels.zone
    max_per_node = 1
  }

  health {
    http         = "/healthz"
    interval     = "100ms"
    start_period = "5s"
  }
}
`, image, p.port)
	return b.String()
}

// commit writes main.hcl (formatted by berth fmt) and commits it on main:
// a pull request's change, merged as it was planned.
func (p *pipeline) commit(mainHCL, msg string) {
	p.t.Helper()
	p.write("examples/ci/main.hcl", mainHCL)
	if out, err := exec.Command(filepath.Join(p.fakes, "berth"), "fmt", filepath.Join(p.ws, "examples", "ci")).CombinedOutput(); err != nil {
		p.t.Fatalf("berth fmt: %v\n%s", err, out)
	}
	p.git("add", "-A")
	p.git("commit", "-q", "-m", msg)
	p.mr++
	p.prHead = strings.TrimSpace(p.git("rev-parse", "HEAD"))
}

func (p *pipeline) write(name, content string) {
	p.t.Helper()
	if err := os.WriteFile(filepath.Join(p.ws, filepath.FromSlash(name)), []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pipeline) git(args ...string) string {
	p.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=ci", "-c", "user.email=ci@example.com"}, args...)...)
	cmd.Dir = p.ws
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fresh makes the checkout as a new job finds it: no file left by an earlier
// job, and a new home directory (no ~/.ssh).
func (p *pipeline) fresh() (home string) {
	p.git("clean", "-fdxq")
	os.Remove(p.calls + ".comment")
	return p.t.TempDir()
}

// env is what every job sees: the fakes and berth first on PATH, HOME, the
// fakes' settings, and the SSH key as the CI system hands a secret over.
func (p *pipeline) env(home string) []string {
	return []string{
		"PATH=" + p.fakes + ":" + os.Getenv("PATH"), "HOME=" + home, "NO_COLOR=1", "LC_ALL=C",
		"FAKE_CALLS=" + p.calls, "FAKE_ARTIFACTS=" + p.store, "FAKE_PR_HEAD=" + p.prHead, fmt.Sprintf("FAKE_MR=%d", p.mr),
	}
}

// prJobs runs the pull / merge request's jobs (check, plan), then keeps the
// plan job's artifact paths and checks what the job left: plan exit 2, the
// comment posted is comment.md and is the Markdown plan.
func (p *pipeline) prJobs() {
	t := p.t
	t.Helper()
	home := p.fresh()
	var outputs string
	if p.kind == "github" {
		outputs = filepath.Join(t.TempDir(), "github_output")
		p.runGithub(home, "pull_request", []string{"check", "plan"}, outputs)
	} else {
		p.runGitlab(home, "merge_request_event", []string{"check", "plan"})
	}
	// Keep the artifact: the paths the workflow names.
	os.RemoveAll(p.store)
	os.MkdirAll(p.store, 0o755)
	for _, path := range p.artifactPaths() {
		b, err := os.ReadFile(filepath.Join(p.ws, path))
		if err != nil {
			t.Fatalf("artifact path %s: %v", path, err)
		}
		os.WriteFile(filepath.Join(p.store, path), b, 0o644)
	}
	if p.kind == "github" {
		b, _ := os.ReadFile(outputs)
		if !strings.Contains(string(b), "changes=true") {
			t.Errorf("the plan step's output is %q, want changes=true (plan exited 2)", b)
		}
	} else if !strings.Contains(p.log, "berth plan exited 2") {
		t.Errorf("the plan job's berth plan -detailed-exitcode did not exit 2:\n%s", p.log)
	}
	comment, err := os.ReadFile(p.calls + ".comment")
	if err != nil {
		t.Fatalf("no comment was posted:\n%s", p.log)
	}
	want, _ := os.ReadFile(filepath.Join(p.ws, "comment.md"))
	if string(comment) != string(want) || !strings.HasPrefix(string(comment), "### berth plan for project `"+p.project+"`") ||
		!strings.Contains(string(comment), "**Plan: ") {
		t.Errorf("the comment posted is not comment.md, the Markdown plan:\n%s", comment)
	}
}

// mergeJob runs the apply job on main after the request's merge commit.
func (p *pipeline) mergeJob() {
	home := p.fresh()
	p.git("commit", "-q", "--allow-empty", "-m",
		fmt.Sprintf("Merge branch 'change-%d' into 'main'\n\nSee merge request example/infra!%d", p.mr, p.mr))
	if p.kind == "github" {
		p.runGithub(home, "push", []string{"apply"}, filepath.Join(p.t.TempDir(), "github_output"))
	} else {
		p.runGitlab(home, "push", []string{"apply"})
	}
}

func (p *pipeline) artifact(name string) string {
	b, _ := os.ReadFile(filepath.Join(p.store, name))
	return string(b)
}

// artifactPaths are the files the plan job keeps, as the pipeline names them.
func (p *pipeline) artifactPaths() []string {
	var paths []string
	if p.kind == "github" {
		for _, st := range p.github.Jobs["plan"].Steps {
			if strings.HasPrefix(st.Uses, "actions/upload-artifact@") {
				paths = append(paths, strings.Fields(st.With["path"])...)
			}
		}
	} else {
		plan, _ := p.gitlabDoc["plan"].(map[string]any)
		arts, _ := plan["artifacts"].(map[string]any)
		for _, v := range flatten(arts["paths"]) {
			paths = append(paths, v)
		}
	}
	if len(paths) == 0 {
		p.t.Fatalf("%s: the plan job keeps no artifact", p.kind)
	}
	return paths
}

// The GitHub expressions the workflow may use, and their values here.
func (p *pipeline) githubExpr(event string) map[string]string {
	key, err := os.ReadFile(p.c.Key)
	if err != nil {
		p.t.Fatal(err)
	}
	return map[string]string{
		"secrets.BERTH_SSH_KEY":               string(key),
		"github.token":                        "test-token",
		"github.event.pull_request.number":    fmt.Sprint(p.mr),
		"github.event_name":                   event,
		"github.event_name == 'pull_request'": fmt.Sprint(event == "pull_request"),
		"github.event_name == 'push' && github.ref == 'refs/heads/main'": fmt.Sprint(event == "push"),
	}
}

var githubExprRe = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// runGithub runs the jobs (in order) as GitHub does: each run: step its own
// bash -e script in the checkout, with the workflow's, job's and step's env;
// `uses:` steps are the test's (see TestPipelinesAgainstCluster).
func (p *pipeline) runGithub(home, event string, jobs []string, outputs string) {
	t := p.t
	t.Helper()
	exprs := p.githubExpr(event)
	subst := func(s string) string {
		return githubExprRe.ReplaceAllStringFunc(s, func(m string) string {
			e := githubExprRe.FindStringSubmatch(m)[1]
			v, ok := exprs[e]
			if !ok {
				t.Fatalf("github: the test has no value for the expression %q", e)
			}
			return v
		})
	}
	cond := func(s string) bool {
		if s == "" {
			return true
		}
		v, ok := exprs[strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "${{"), "}}"))]
		if !ok {
			t.Fatalf("github: the test cannot evaluate the condition %q", s)
		}
		return v == "true"
	}
	sha := strings.TrimSpace(p.git("rev-parse", "HEAD"))
	var log strings.Builder
	for _, name := range jobs {
		job, ok := p.github.Jobs[name]
		if !ok {
			t.Fatalf("github: no job %q", name)
		}
		if !cond(job.If) {
			t.Fatalf("github: job %s does not run on %s (if: %s)", name, event, job.If)
		}
		for _, st := range job.Steps {
			if st.Run == "" || !cond(st.If) {
				continue
			}
			script := subst(withoutInstall(st.Run))
			if strings.TrimSpace(script) == "" {
				continue
			}
			env := append(p.env(home), "GITHUB_REPOSITORY=example/infra", "GITHUB_SHA="+sha, "GITHUB_OUTPUT="+outputs,
				"GITHUB_EVENT_NAME="+event, "CI=true")
			for _, m := range []map[string]string{p.github.Env, job.Env, st.Env} {
				for _, k := range sortedKeys(m) {
					env = append(env, k+"="+subst(m[k]))
				}
			}
			fmt.Fprintf(&log, "=== %s / %s\n", name, st.Name)
			out, err := p.shell(env, []string{"bash", "-e", "-c", script})
			log.WriteString(out)
			if err != nil {
				p.log = log.String()
				t.Fatalf("github job %s, step %q: %v\n%s", name, st.Name, err, p.log)
			}
		}
	}
	p.log = log.String()
	t.Logf("github %s:\n%s", strings.Join(jobs, ", "), p.log)
}

// runGitlab runs the jobs as the GitLab runner does: before_script and
// script in one bash with set -eo pipefail, the pipeline's variables, CI_*
// variables, and BERTH_SSH_KEY a variable of type File (a path).
func (p *pipeline) runGitlab(home, source string, jobs []string) {
	t := p.t
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "BERTH_SSH_KEY")
	key, err := os.ReadFile(p.c.Key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, key, 0o600)
	branch := "main"
	if source == "merge_request_event" {
		branch = fmt.Sprintf("change-%d", p.mr)
	}
	rules := map[string]bool{
		`$CI_PIPELINE_SOURCE == "merge_request_event"`: source == "merge_request_event",
		`$CI_COMMIT_BRANCH == "main"`:                  source == "push",
	}
	def, _ := p.gitlabDoc["default"].(map[string]any)
	vars, _ := p.gitlabDoc["variables"].(map[string]any)
	var log strings.Builder
	for _, name := range jobs {
		job, ok := p.gitlabDoc[name].(map[string]any)
		if !ok {
			t.Fatalf("gitlab: no job %q", name)
		}
		if rl, ok := job["rules"].([]any); ok {
			runs := false
			for _, r := range rl {
				cond, _ := r.(map[string]any)["if"].(string)
				v, known := rules[cond]
				if !known {
					t.Fatalf("gitlab: the test cannot evaluate the rule %q", cond)
				}
				runs = runs || v
			}
			if !runs {
				t.Fatalf("gitlab: job %s does not run on %s", name, source)
			}
		}
		lines := append(flatten(def["before_script"]), flatten(job["script"])...)
		script := "set -eo pipefail\n" + withoutInstall(strings.Join(lines, "\n"))
		env := append(p.env(home), "CI=true", "CI_API_V4_URL=https://gitlab.example.com/api/v4", "CI_PROJECT_ID=42",
			"CI_PIPELINE_SOURCE="+source, "CI_COMMIT_BRANCH="+branch, "GITLAB_TOKEN=test-token", "BERTH_SSH_KEY="+keyFile)
		if source == "merge_request_event" {
			env = append(env, fmt.Sprintf("CI_MERGE_REQUEST_IID=%d", p.mr))
		}
		for _, k := range sortedKeys(vars) {
			env = append(env, fmt.Sprintf("%s=%v", k, vars[k]))
		}
		fmt.Fprintf(&log, "=== %s\n", name)
		out, err := p.shell(env, []string{"bash", "-c", script})
		log.WriteString(out)
		if err != nil {
			p.log = log.String()
			t.Fatalf("gitlab job %s: %v\n%s", name, err, p.log)
		}
	}
	p.log = log.String()
	t.Logf("gitlab %s:\n%s", strings.Join(jobs, ", "), p.log)
}

func (p *pipeline) shell(env, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = p.ws
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// withoutInstall drops the `go install .../cmd/berth@...` line: this tree's
// berth is on PATH instead.
func withoutInstall(script string) string {
	var keep []string
	for _, l := range strings.Split(script, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "go install github.com/berth-dev/berth/cmd/berth") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// stopReplica stops the project's running container on node, by hand.
func (p *pipeline) stopReplica(node string) {
	p.t.Helper()
	cli := p.c.Docker(p.t, node)
	list, err := cli.ContainerList(context.Background(), container.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", testcluster.ProjectLabel+"="+p.project))})
	if err != nil || len(list) != 1 {
		p.t.Fatalf("%s: want one running container of the project, have %d (%v)", node, len(list), err)
	}
	if err := cli.ContainerStop(context.Background(), list[0].ID, container.StopOptions{}); err != nil {
		p.t.Fatal(err)
	}
}

// expectServing checks every node answers on the port with want (the echo
// image's version), and that only containers of that image run.
func (p *pipeline) expectServing(want string) {
	p.t.Helper()
	image := "berth-test/" + strings.ReplaceAll(want, " ", ":")
	for _, n := range p.c.Nodes {
		if body := httpGet(n.Addr, p.port); !strings.HasPrefix(body, want+" ") {
			p.t.Errorf("%s:%d answers %q, want %q", n.Name, p.port, body, want)
		}
		list, err := p.c.Docker(p.t, n.Name).ContainerList(context.Background(), container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", testcluster.ProjectLabel+"="+p.project))})
		if err != nil {
			p.t.Fatal(err)
		}
		for _, ct := range list {
			if ct.Image != image {
				p.t.Errorf("%s: %s runs %s, want %s", n.Name, ct.Names[0], ct.Image, image)
			}
		}
	}
}

// expectNoChanges: a plan of the checkout's configuration now has nothing
// to do.
func (p *pipeline) expectNoChanges() {
	p.t.Helper()
	home := p.t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	key, _ := os.ReadFile(p.c.Key)
	kh, _ := os.ReadFile(p.c.KnownHosts)
	os.WriteFile(filepath.Join(home, ".ssh", "berth_ci"), key, 0o600)
	os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), kh, 0o600)
	out, err := p.shell(p.env(home), []string{filepath.Join(p.fakes, "berth"), "plan", "-no-color", "-detailed-exitcode", "examples/ci"})
	if err != nil {
		p.t.Errorf("after the apply job, plan has changes or fails (%v):\n%s", err, out)
	}
}

func httpGet(addr string, port int) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/", addr, port))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func readGitlab(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(".gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// flatten turns a script: value (a string, or lists nested by anchors) into
// its lines.
func flatten(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fakeGH serves the gh calls of the workflow: the merged PR's head commit,
// its last successful run, that run's artifact, and the comment.
const fakeGH = `#!/bin/bash
echo "gh $*" >> "$FAKE_CALLS"
case "$1 $2" in
"api repos/$GITHUB_REPOSITORY/commits/$GITHUB_SHA/pulls") echo "$FAKE_PR_HEAD" ;;
"run list")
	case " $* " in *" --event pull_request --commit $FAKE_PR_HEAD --status success "*) echo 4242 ;; esac ;;
"run download")
	[ "$3" = 4242 ] || { echo "no run $3" >&2; exit 1; }
	dir=.; set -- "${@:4}"
	while [ $# -gt 0 ]; do case "$1" in --dir) dir=$2; shift ;; esac; shift; done
	cp "$FAKE_ARTIFACTS"/* "$dir"/ ;;
"pr comment")
	[ "$3" = "$FAKE_MR" ] || { echo "no pull request $3" >&2; exit 1; }
	set -- "${@:4}"
	while [ $# -gt 0 ]; do case "$1" in --body-file) cp "$2" "$FAKE_CALLS.comment"; shift ;; esac; shift; done ;;
*) echo "fake gh: unexpected call: gh $*" >&2; exit 1 ;;
esac
`

// fakeCurl serves the GitLab API calls of the pipeline: the merge request's
// note (the comment) and its plan job's artifact files by ref.
const fakeCurl = `#!/bin/bash
echo "curl $*" >> "$FAKE_CALLS"
out=; url=; body=
while [ $# -gt 0 ]; do
	case "$1" in
	-o) out=$2; shift ;;
	--data-urlencode) body=$2; shift ;;
	-H|-X) shift ;;
	-*) ;;
	*) url=$1 ;;
	esac
	shift
done
case "$url" in
"$CI_API_V4_URL/projects/$CI_PROJECT_ID/merge_requests/$FAKE_MR/notes") cp "${body#body@}" "$FAKE_CALLS.comment" ;;
"$CI_API_V4_URL/projects/$CI_PROJECT_ID/jobs/artifacts/refs%2Fmerge-requests%2F$FAKE_MR%2Fhead/raw/"*"?job=plan")
	f=${url##*/raw/}; f=${f%%\?*}
	[ -f "$FAKE_ARTIFACTS/$f" ] || exit 22
	cp "$FAKE_ARTIFACTS/$f" "${out:-/dev/stdout}" ;;
*) echo "fake curl: unexpected URL $url" >&2; exit 22 ;;
esac
`
