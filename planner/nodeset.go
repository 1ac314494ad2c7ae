package planner

import (
	"fmt"
	"slices"
	"strings"
)

// This file is the nodes removed from the configuration: a node an earlier
// apply recorded in the project's node set (its audit records) whose block
// is gone. The executor reaches it at its recorded address and gathers it
// with Removed set; the planner places nothing there, moves its replicas
// of configured services to the configured nodes (as for a drained node),
// deletes the rest of the project's containers there, and says so. Volumes
// and foreign containers are never touched.

// removedWhy is why a replica leaves a removed node.
const removedWhy = "the node was removed from the configuration"

// removedNodeWarnings names each removed node and what of the project
// still runs there (or that it could not be read).
func (p *planState) removedNodeWarnings() {
	for _, n := range p.removed {
		if !n.reachable {
			p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
				"node %s was removed from the configuration but is unreachable (%s): the project's containers there, if any, cannot be removed now; the next apply tries again",
				n.name(), n.reason))
			continue
		}
		var names []string
		for _, c := range n.state.Containers {
			names = append(names, c.Name)
		}
		if len(names) == 0 {
			continue
		}
		slices.Sort(names)
		p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(
			"node %s was removed from the configuration and still runs %s of project %q: %s (removed by this plan; volumes and other containers there are kept)",
			n.name(), fmt.Sprintf("%d container%s", len(names), plural(len(names))), p.project, strings.Join(names, ", ")))
	}
}
