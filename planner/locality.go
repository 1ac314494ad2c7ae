package planner

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/config"
)

// This file is placement's data locality: a replica with no container goes
// back to the node that holds its named volumes.

// dataMiss is a replica's data node that could not take the replica.
type dataMiss struct {
	home dataHome
	why  string
}

// dataHome is a node holding named volumes of a replica.
type dataHome struct {
	node *nodeView
	vols []string
	// exact: the volumes carry the replica's labels; otherwise they carry
	// no berth label and match by name only.
	exact bool
}

// serviceVolumes lists the named volumes (not bind mounts) a service mounts,
// sorted, each once.
func serviceVolumes(svc *config.Service) []string {
	var out []string
	for _, v := range svc.Volumes {
		if !v.IsBind() && v.Source != "" && !slices.Contains(out, v.Source) {
			out = append(out, v.Source)
		}
	}
	slices.Sort(out)
	return out
}

// volumeOwner says whose data a volume on a node is, by its labels: this
// service's replica r ("" when it has no replica label, or no berth label
// at all), and whether it may belong to the service at all.
func (p *planState) volumeOwner(v Volume, service string) (replica string, ours bool) {
	proj, labelled := v.Labels[LabelProject]
	if !labelled {
		return "", true
	}
	if proj != p.project || v.Labels[LabelKind] != "" || v.Labels[LabelService] != service {
		return "", false
	}
	return v.Labels[LabelReplica], true
}

// dataSearch is what placeOnData knows while it places replicas by their
// data: the volumes the service mounts, and the unlabelled volumes already
// claimed (by node and name) by a container of the service or a replica
// placed on them.
type dataSearch struct {
	wanted  map[string]bool
	claimed map[string]bool
}

func volumeKey(n *nodeView, vol string) string { return n.name() + "\x00" + vol }

// placeOnData puts each replica that has no container anywhere on the node
// that holds its named volumes (after destroy kept them, or after its
// container was removed by hand), so that it finds its data again. A volume
// with the replica's labels says so exactly; a volume with no berth label
// (made by an older berth or by hand) matches by name, for one replica only
// and not if a container of the service already mounts it. A replica whose
// data node cannot take it is placed as usual, and the plan says that its
// data stays behind. It returns the replicas still to place.
func (pl *placement) placeOnData(missing []int) []int {
	pl.dataNote, pl.dataLeft = map[int]string{}, map[int]dataMiss{}
	vols := serviceVolumes(pl.svc)
	if len(vols) == 0 || len(missing) == 0 {
		return missing
	}
	ds := &dataSearch{wanted: map[string]bool{}, claimed: map[string]bool{}}
	for _, v := range vols {
		ds.wanted[v] = true
	}
	// Unlabelled volumes already mounted by the service's containers are
	// theirs.
	for _, oc := range pl.p.own[pl.svc.Name] {
		for _, m := range oc.c.Mounts {
			if m.Type == "volume" {
				ds.claimed[volumeKey(oc.node, m.Name)] = true
			}
		}
	}
	var rest []int
	for _, i := range missing {
		if len(pl.byIndex[i]) > 0 || !pl.placeAtHome(i, ds) {
			rest = append(rest, i) // a move, or no data node could take it
		}
	}
	return rest
}

// placeAtHome places replica i on the first of its data nodes that can
// take it. When none can, it records the first and why.
func (pl *placement) placeAtHome(i int, ds *dataSearch) bool {
	hs := pl.dataHomes(i, ds)
	for k, h := range hs {
		why := ""
		if !pl.baseSet[h.node] {
			why = pl.ruled[h.node.name()]
			if why == "" {
				why = "not eligible"
			}
		} else if reason, kind := pl.fit(h.node); reason != "" {
			pl.rule(h.node, reason, kind)
			why = reason
		}
		if why != "" {
			if k == 0 {
				pl.dataLeft[i] = dataMiss{home: h, why: why}
			}
			continue
		}
		delete(pl.dataLeft, i)
		pl.claim(h.node, i)
		pl.placed[i] = h.node
		if !h.exact {
			for _, v := range h.vols {
				ds.claimed[volumeKey(h.node, v)] = true
			}
		}
		pl.dataNote[i] = fmt.Sprintf("placed on %s, which holds its volume %s", h.node.name(), strings.Join(h.vols, ", "))
		return true
	}
	return false
}

// dataHomes lists the reachable nodes holding replica i's volumes: those
// whose volumes carry its labels first, then those with unclaimed
// unlabelled volumes of the right names, each in node order.
func (pl *placement) dataHomes(i int, ds *dataSearch) []dataHome {
	var exact, loose []dataHome
	for _, n := range pl.p.nodes {
		if !n.reachable {
			continue
		}
		var ex, lo []string
		for _, v := range n.state.Volumes {
			if !ds.wanted[v.Name] {
				continue
			}
			r, ours := pl.p.volumeOwner(v, pl.svc.Name)
			switch {
			case !ours:
			case r == strconv.Itoa(i):
				ex = append(ex, v.Name)
			case r == "" && !ds.claimed[volumeKey(n, v.Name)]:
				lo = append(lo, v.Name)
			}
		}
		if len(ex) > 0 {
			slices.Sort(ex)
			exact = append(exact, dataHome{node: n, vols: ex, exact: true})
		} else if len(lo) > 0 {
			slices.Sort(lo)
			loose = append(loose, dataHome{node: n, vols: lo})
		}
	}
	return append(exact, loose...)
}
