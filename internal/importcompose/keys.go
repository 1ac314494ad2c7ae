package importcompose

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// keySet is the keys the importer carries over at a place in the model;
// a nested keySet says which of the value's keys it carries. A key not in
// it gets one warning. nil: every key below is carried (or warned about by
// the mapping itself).
type keySet map[string]keySet

var (
	resourceKeys = keySet{"cpus": nil, "memory": nil}
	serviceKeys  = keySet{
		"image": nil, "build": {"context": nil, "dockerfile": nil, "args": nil, "target": nil},
		"deploy": {"replicas": nil, "mode": nil, "placement": {"constraints": nil, "preferences": nil, "max_replicas_per_node": nil},
			"update_config":   {"parallelism": nil, "delay": nil, "failure_action": nil, "monitor": nil, "order": nil, "max_failure_ratio": nil},
			"rollback_config": nil,
			"resources":       {"limits": resourceKeys, "reservations": resourceKeys},
			"restart_policy":  nil},
		"ports":       nil, // per item, below
		"healthcheck": {"test": nil, "interval": nil, "timeout": nil, "retries": nil, "start_period": nil, "start_interval": nil, "disable": nil},
		"restart":     nil, "environment": nil, "env_file": nil, "secrets": nil, "volumes": nil, "command": nil, "entrypoint": nil,
		"depends_on": nil, "labels": nil, "user": nil, "working_dir": nil, "hostname": nil, "extra_hosts": nil,
		"stop_grace_period": nil, "pull_policy": nil, "profiles": nil, "cpus": nil, "mem_limit": nil, "scale": nil,
	}
	portKeys   = keySet{"target": nil, "published": nil, "protocol": nil, "mode": nil, "host_ip": nil}
	volumeKeys = keySet{"type": nil, "source": nil, "target": nil, "read_only": nil}
)

// checkKeys warns once for each key of the active services, and each
// top-level section, that the importer does not carry over.
func (im *importer) checkKeys(p *types.Project) {
	for _, top := range slices.Sorted(maps.Keys(im.raw)) {
		switch top {
		case "services", "name", "secrets":
		case "volumes":
			vols, _ := im.raw["volumes"].(map[string]any)
			for _, v := range slices.Sorted(maps.Keys(vols)) {
				def, _ := vols[v].(map[string]any)
				for _, k := range slices.Sorted(maps.Keys(def)) {
					if !im.loc.has("volumes." + v + "." + k) {
						continue // compose-go's own default (name)
					}
					im.warn("volumes."+v+"."+k, "volume settings are not carried over: berth creates a local named volume")
				}
			}
		default:
			if strings.HasPrefix(top, "x-") || !im.loc.has(top) {
				continue // extension fields: anchors for the rest of the file
			}
			im.warn(top, "the top-level "+top+" section is not carried over")
		}
	}
	services, _ := im.raw["services"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		svc, _ := services[name].(map[string]any)
		key := "services." + name
		im.checkMap(key, svc, serviceKeys)
		for i, port := range list(svc["ports"]) {
			if m, ok := port.(map[string]any); ok {
				im.checkMap(key+".ports"+idx(i), m, portKeys)
			}
		}
		for i, vol := range list(svc["volumes"]) {
			if m, ok := vol.(map[string]any); ok {
				im.checkMap(key+".volumes"+idx(i), m, volumeKeys)
			}
		}
	}
}

func list(v any) []any { l, _ := v.([]any); return l }

func idx(i int) string { return "[" + itoa(i) + "]" }

func itoa(i int) string { return strconv.Itoa(i) }

func (im *importer) checkMap(key string, m map[string]any, known keySet) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		sub, ok := known[k]
		if !ok {
			if strings.HasPrefix(k, "x-") || !im.loc.has(key+"."+k) {
				continue
			}
			im.warn(key+"."+k, "not carried over: berth has no "+k)
			continue
		}
		if sub != nil {
			if mm, ok := m[k].(map[string]any); ok {
				im.checkMap(key+"."+k, mm, sub)
			}
		}
	}
}
