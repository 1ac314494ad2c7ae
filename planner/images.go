package planner

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// planImages lists the image work apply does before any container changes:
// a build on the local engine, a send of a local image to the nodes that
// lack it, or a pull on the nodes.
func (p *planState) planImages() hcl.Diagnostics {
	type need struct {
		image    string
		nodes    map[string]bool
		services map[string]bool
	}
	needs := map[string]*need{}
	var diags hcl.Diagnostics
	missing := map[string]map[string]bool{}
	var missingOrder []string
	for _, b := range p.batches {
		for _, a := range b {
			if a.Spec == nil || (a.Kind != Create && a.Kind != Replace) {
				continue
			}
			svc := p.cfg.Service(a.Service)
			n := p.nodeByName[a.Node]
			ref := NormalizeRef(a.Spec.Image)
			pull := svc.Pull
			if pull == "" {
				pull = "missing"
			}
			if _, present := n.imageIDs[ref]; present && pull != "always" {
				continue
			}
			if pull == "never" && svc.Build == nil {
				if _, local := p.localImage(ref); !local {
					k := a.Service + "\x00" + a.Spec.Image
					if missing[k] == nil {
						missingOrder = append(missingOrder, k)
						missing[k] = map[string]bool{}
					}
					missing[k][a.Node] = true
					continue
				}
			}
			k := a.Spec.Image
			if needs[k] == nil {
				needs[k] = &need{image: a.Spec.Image, nodes: map[string]bool{}, services: map[string]bool{}}
			}
			needs[k].nodes[a.Node] = true
			needs[k].services[a.Service] = true
		}
	}
	for _, k := range missingOrder {
		svcName, img, _ := strings.Cut(k, "\x00")
		svc := p.cfg.Service(svcName)
		r := svc.Range("image")
		nodes := strings.Join(sortedKeys(missing[k]), ", ")
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("Image %s is missing on %s", img, nodes),
			Detail:  fmt.Sprintf("Service %q has pull = \"never\", and neither %s nor the local engine has the image.", svcName, nodes),
			Subject: &r})
	}
	// Builds first: a service with a build block whose image the local
	// engine does not hold yet.
	for _, s := range p.cfg.Services {
		if s.Build == nil || p.opts.Destroy {
			continue
		}
		img := p.desired[s.Name].image
		if _, ok := p.localImage(NormalizeRef(img)); !ok {
			p.plan.Images = append(p.plan.Images, ImageAction{Kind: "build", Image: img, Services: []string{s.Name}})
		}
	}
	keys := make([]string, 0, len(needs))
	for k := range needs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		nd := needs[k]
		ia := ImageAction{Image: nd.image, Nodes: sortedKeys(nd.nodes), Services: sortedKeys(nd.services)}
		pullAlways := false
		built := false
		for s := range nd.services {
			svc := p.cfg.Service(s)
			if svc.Pull == "always" && svc.Build == nil {
				pullAlways = true
			}
			if svc.Build != nil {
				built = true
			}
		}
		img, local := p.localImage(NormalizeRef(nd.image))
		switch {
		case pullAlways:
			ia.Kind = "pull"
		case local || built:
			ia.Kind = "send"
			ia.ID, ia.Size = img.ID, img.Size
		default:
			ia.Kind = "pull"
		}
		p.plan.Images = append(p.plan.Images, ia)
	}
	return diags
}

func (p *planState) localImage(ref string) (Image, bool) {
	for _, img := range p.opts.LocalImages {
		for _, t := range img.Tags {
			if NormalizeRef(t) == ref {
				return img, true
			}
		}
	}
	return Image{}, false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
