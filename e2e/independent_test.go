package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testcluster"
)

// independentHCL is three services that neither depend on nor refer to
// each other (a, b, c) and one that depends on a (d): one replica each,
// each publishing its own host port (18920-18923), health-checked over TCP
// and held for a monitor window before it counts.
func independentHCL(image string) string {
	var b strings.Builder
	for i, name := range []string{"a", "b", "c", "d"} {
		deps := ""
		if name == "d" {
			deps = `depends_on = ["a"]`
		}
		fmt.Fprintf(&b, `
service %q {
  image             = %q
  replicas          = 1
  stop_grace_period = "1s"
  %s

  port {
    target    = 8080
    published = %d
  }

  health {
    tcp      = true
    port     = 8080
    interval = "200ms"
  }

  update {
    monitor = "2s"
  }
}
`, name, image, deps, 18920+i)
	}
	return b.String()
}

// Independent services roll out at the same time: the plan puts a, b and c
// in batch 1 and d (depends_on a) in batch 2; on the engines, each of a, b
// and c was started before any of them had passed its health check and
// monitor window (the apply's action_done events), and d only after a had.
// The same holds for a rolling update of all four.
func TestIndependentServicesRollOutTogether(t *testing.T) {
	c := testcluster.Require(t)
	dir := c.ConfigDir(t, map[string]string{"main.hcl": independentHCL(testcluster.ImageV1)})
	project := filepath.Base(dir)

	for _, image := range []string{testcluster.ImageV1, testcluster.ImageV2} {
		writeMain(t, dir, independentHCL(image))
		r := berth(t, nil, "apply", "-auto-approve", "-json", dir)
		if r.code != 0 {
			t.Fatalf("apply %s failed:\n%s", image, r)
		}
		ja := parseJSONApply(t, r.out)
		acts, _ := ja.Plan["actions"].([]any)
		batch := map[string]float64{}
		node := map[string]string{}
		for _, x := range acts {
			a := x.(map[string]any)
			batch[a["service"].(string)] = a["batch"].(float64)
			node[a["service"].(string)] = a["node"].(string)
		}
		if len(acts) != 4 || batch["a"] != 1 || batch["b"] != 1 || batch["c"] != 1 || batch["d"] != 2 {
			t.Fatalf("%s: want a, b, c in batch 1 and d in batch 2, got %v (%d actions)", image, batch, len(acts))
		}
		// When each action was done (healthy for its monitor window), from
		// the apply's own events.
		done := map[string]time.Time{}
		for _, e := range ja.Events {
			if e["type"] == "action_done" {
				ts, err := time.Parse(time.RFC3339Nano, e["time"].(string))
				if err != nil {
					t.Fatal(err)
				}
				done[e["service"].(string)] = ts
			}
		}
		// When each new container started, from its node's engine.
		started := map[string]time.Time{}
		for svc, n := range node {
			name := project + "-" + svc + "-1"
			info, err := c.Docker(t, n).ContainerInspect(context.Background(), name)
			if err != nil {
				t.Fatalf("%s: inspect %s on %s: %v", image, name, n, err)
			}
			if info.Config.Image != image || !info.State.Running {
				t.Fatalf("%s: %s on %s runs %s (running %v)", image, name, n, info.Config.Image, info.State.Running)
			}
			ts, err := time.Parse(time.RFC3339Nano, info.State.StartedAt)
			if err != nil {
				t.Fatal(err)
			}
			started[svc] = ts
		}
		if len(done) != 4 {
			t.Fatalf("%s: action_done events for %v, want a, b, c, d", image, done)
		}
		t.Logf("%s: started %v; done %v", image, started, done)
		for _, x := range []string{"a", "b", "c"} {
			for _, y := range []string{"a", "b", "c"} {
				if !started[x].Before(done[y]) {
					t.Errorf("%s: %s started at %s, after %s was done at %s: they did not roll out together",
						image, x, started[x].Format(time.StampMilli), y, done[y].Format(time.StampMilli))
				}
			}
		}
		if !started["d"].After(done["a"]) {
			t.Errorf("%s: d (depends_on a) started at %s, before a was done at %s", image,
				started["d"].Format(time.StampMilli), done["a"].Format(time.StampMilli))
		}
		for i, svc := range []string{"a", "b", "c", "d"} {
			for _, n := range c.Nodes {
				if n.Name == node[svc] && get(n.Addr, 18920+i, "/") == "" {
					t.Errorf("%s: service %s does not answer on %s:%d", image, svc, n.Addr, 18920+i)
				}
			}
		}
	}
}
