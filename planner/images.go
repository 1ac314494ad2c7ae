package planner

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/config"
	"github.com/hashicorp/hcl/v2"
)

// Image action kinds (ImageAction.Kind).
const (
	// ImageBuild builds the image on the local engine (the machine running
	// berth). Nodes lists the nodes whose engine is the local engine: the
	// build puts the image there.
	ImageBuild = "build"
	// ImageSend streams the image from the local engine to Nodes over their
	// SSH connections (docker save | docker load).
	ImageSend = "send"
	// ImageTag gives the image its name on Nodes, which already hold the
	// exact image ID under another name: nothing is sent.
	ImageTag = "tag"
	// ImagePull makes Nodes pull the image from its registry.
	ImagePull = "pull"
)

// planImages lists the image work apply does before any container changes,
// builds first: a build on the local engine, a send of a local image to the
// nodes that lack it, a tag where a node has the image under another name,
// or a pull on the nodes.
//
// A node lacks an image when it has no image of that name. For a service
// with a build block the name is the content tag, so a changed context is a
// new name (and its replicas are replaced); pull does not apply to it. For
// other services, pull = "always" pulls even when the node has the name.
func (p *planState) planImages() hcl.Diagnostics {
	if p.opts.Destroy {
		return nil
	}
	type need struct {
		image    string // as the first service wrote it
		nodes    map[string]bool
		services map[string]bool
		built    bool // a service builds it
		always   bool // a service without build has pull = "always"
	}
	needs := map[string]*need{}     // by normalized reference
	buildNodes := map[string]bool{} // "ref\x00node": local-engine nodes a build serves
	var diags hcl.Diagnostics
	missing := map[string]map[string]bool{}
	var missingOrder []string
	refused := map[string]map[string]bool{}
	var refusedOrder []string
	for _, b := range p.lv.batches {
		for _, a := range b {
			if a.Spec == nil || (a.Kind != Create && a.Kind != Replace) {
				continue
			}
			svc := p.cfg.Service(a.Service)
			if svc == nil {
				svc = &config.Service{Name: a.Service, Pull: config.DefaultPull} // the ingress proxy
			}
			n := p.nodeByName[a.Node]
			ref := NormalizeRef(a.Spec.Image)
			built := svc.Build != nil
			pull := svc.Pull
			if pull == "" || built {
				pull = "missing"
			}
			if rv := p.rollbackRevision(a.Service); rv != nil {
				// A rollback runs the recorded image ID, sent or tagged
				// from the local engine: never built again nor pulled.
				kind, ok := p.rollbackImage(n, rv)
				if !ok {
					k := a.Service + "\x00" + a.Spec.Image
					if refused[k] == nil {
						refusedOrder = append(refusedOrder, k)
						refused[k] = map[string]bool{}
					}
					refused[k][a.Node] = true
					continue
				}
				if kind == "" {
					continue
				}
				built, pull = false, "missing"
			} else if _, present := n.imageIDs[ref]; present && pull != "always" {
				continue
			}
			_, local := p.localImage(ref)
			if built && !local && p.isLocalEngine(n) {
				buildNodes[ref+"\x00"+a.Node] = true
			}
			if pull == "never" && !local {
				k := a.Service + "\x00" + a.Spec.Image
				if missing[k] == nil {
					missingOrder = append(missingOrder, k)
					missing[k] = map[string]bool{}
				}
				missing[k][a.Node] = true
				continue
			}
			nd := needs[ref]
			if nd == nil {
				nd = &need{image: a.Spec.Image, nodes: map[string]bool{}, services: map[string]bool{}}
				needs[ref] = nd
			}
			nd.nodes[a.Node] = true
			nd.services[a.Service] = true
			nd.built = nd.built || built
			nd.always = nd.always || (pull == "always" && !built)
		}
	}
	for _, k := range missingOrder {
		svcName, img, _ := strings.Cut(k, "\x00")
		svc := p.cfg.Service(svcName)
		r := svc.Range("image")
		nodes := strings.Join(slices.Sorted(maps.Keys(missing[k])), ", ")
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("Image %s is missing on %s", img, nodes),
			Detail:  fmt.Sprintf("Service %q has pull = \"never\", and neither %s nor the local engine has the image.", svcName, nodes),
			Subject: &r})
	}

	diags = append(diags, p.refuseRollbackImages(refusedOrder, refused)...)

	// Builds: an image some node needs that the local engine lacks. Services
	// building the same image share one build.
	var builds []*ImageAction
	byRef := map[string]*ImageAction{}
	for _, s := range p.cfg.Services {
		if s.Build == nil || p.desired[s.Name] == nil || p.rollbackRevision(s.Name) != nil {
			continue
		}
		img := p.desired[s.Name].image
		ref := NormalizeRef(img)
		if _, ok := p.localImage(ref); ok {
			continue
		}
		nd := needs[ref]
		if nd == nil || !nd.services[s.Name] {
			continue
		}
		ia := byRef[ref]
		if ia == nil {
			ia = &ImageAction{Kind: ImageBuild, Image: img}
			byRef[ref] = ia
			builds = append(builds, ia)
			for n := range nd.nodes {
				if buildNodes[ref+"\x00"+n] {
					ia.Nodes = append(ia.Nodes, n)
				}
			}
			slices.Sort(ia.Nodes)
		}
		ia.Services = append(ia.Services, s.Name)
	}
	for _, ia := range builds {
		slices.Sort(ia.Services)
		p.plan.Images = append(p.plan.Images, *ia)
	}

	for _, k := range slices.Sorted(maps.Keys(needs)) {
		nd := needs[k]
		services := slices.Sorted(maps.Keys(nd.services))
		var send, tag, pull []string
		img, local := p.localImage(k)
		for _, n := range slices.Sorted(maps.Keys(nd.nodes)) {
			switch {
			case nd.always:
				pull = append(pull, n)
			case nd.built && buildNodes[k+"\x00"+n]:
				// The build puts it there.
			case local && p.nodeByName[n].imageSet[img.ID]:
				tag = append(tag, n)
			case local || nd.built:
				send = append(send, n)
			default:
				pull = append(pull, n)
			}
		}
		if len(send) > 0 {
			ia := ImageAction{Kind: ImageSend, Image: nd.image, ID: img.ID, Size: img.Size, Nodes: send, Services: services}
			if local {
				for _, n := range send {
					ia.Transfers = append(ia.Transfers, Transfer(n, img, p.nodeByName[n].state.Images))
				}
			}
			p.plan.Images = append(p.plan.Images, ia)
		}
		if len(tag) > 0 {
			p.plan.Images = append(p.plan.Images, ImageAction{Kind: ImageTag, Image: nd.image, ID: img.ID, Size: img.Size, Nodes: tag, Services: services})
		}
		if len(pull) > 0 {
			p.plan.Images = append(p.plan.Images, ImageAction{Kind: ImagePull, Image: nd.image, Nodes: pull, Services: services})
		}
	}
	return diags
}

// isLocalEngine reports whether n's engine is the one berth runs next to
// (where images are built).
func (p *planState) isLocalEngine(n *nodeView) bool {
	return p.opts.LocalEngineID != "" && n.reachable && n.state.Engine.ID == p.opts.LocalEngineID
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

// SharedLayers returns how many of layers (an image's diff IDs, base
// first) a node holding imgs has already: the longest prefix of layers that
// also begins the layers of one of imgs. Docker keeps a layer by its chain
// (the same diff on another base is another layer), so only a common prefix
// counts.
func SharedLayers(layers []string, imgs []Image) int {
	best := 0
	for _, img := range imgs {
		n := 0
		for n < len(layers) && n < len(img.Layers) && layers[n] == img.Layers[n] {
			n++
		}
		best = max(best, n)
	}
	return best
}

// Transfer says what a send of the local image img carries to node, which
// holds the images held: the layers it lacks (PathLayers) or, when it holds
// none of them or img's layers are not known, the whole image.
func Transfer(node string, img Image, held []Image) ImageTransfer {
	t := ImageTransfer{Node: node, Path: PathWhole, Layers: len(img.Layers), Of: len(img.Layers), Bytes: img.Size}
	k := SharedLayers(img.Layers, held)
	if k == 0 {
		return t
	}
	t.Path, t.Layers, t.Bytes = PathLayers, len(img.Layers)-k, 0
	if len(img.LayerSizes) == len(img.Layers) {
		// The archive's own entries (manifest, config, a directory per
		// layer, tar headers) come on top of the layers' content.
		t.Bytes = archiveOverhead + int64(len(img.Layers))*layerEntryOverhead + int64(t.Layers)*layerTarOverhead
		for _, n := range img.LayerSizes[k:] {
			t.Bytes += n
		}
	}
	return t
}

// Sizes of a docker save archive's entries besides the layers' content, as
// engine 20.10 writes them (about: the config and json files vary).
const (
	archiveOverhead    = 6 << 10 // manifest.json, repositories, the config, the end of the archive
	layerEntryOverhead = 7 << 9  // a layer's directory, VERSION and json entries
	layerTarOverhead   = 5 << 9  // a layer.tar's header, its own headers and end, padding
)
