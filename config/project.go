package config

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var projectSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "ssh"}, {Type: "ingress"}, {Type: "swarm"}},
}

var ingressSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "image"}, {Name: "nodes"}, {Name: "tls"}},
}

// IngressTLS are the values of the ingress block's tls.
var IngressTLS = []string{"off", "internal", "auto"}

var sshSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "user"},
		{Name: "port"},
		{Name: "identity_file"},
		{Name: "known_hosts"},
	},
}

// decodeProject reads the header of the (optional, single) project block;
// decodeProjectSSH reads its body once variables are known.
func (l *loader) decodeProject(blocks hcl.Blocks) {
	l.cfg.Project.Name = defaultProjectName(l.dir)
	if len(blocks) == 0 {
		return
	}
	b := blocks[0]
	for _, dup := range blocks[1:] {
		l.duplicatef(dup.DefRange, b.DefRange, "Duplicate project block", "A configuration has at most one project block.")
	}
	name := b.Labels[0]
	if !ValidName(name) {
		l.errorf(b.LabelRanges[0], "Invalid project name", "%q is not a valid project name. %s", name, nameRule)
	} else {
		l.cfg.Project.Name = name
	}
	l.cfg.Project.DeclRange = b.DefRange
	l.projectBody = b.Body
}

// decodeProjectSSH reads the project's ssh defaults; it runs once variables
// and locals are known, so that they may be used.
func (l *loader) decodeProjectSSH() {
	if l.projectBody == nil {
		return
	}
	content, diags := l.projectBody.Content(projectSchema)
	l.diags = append(l.diags, diags...)
	if content == nil {
		return
	}
	var first, ingress, swarm *hcl.Block
	for _, b := range content.Blocks {
		if b.Type == "swarm" {
			l.decodeSwarm(b, &swarm)
			continue
		}
		if b.Type == "ingress" {
			if ingress != nil {
				l.duplicatef(b.DefRange, ingress.DefRange, "Duplicate ingress block", "A project has at most one ingress block.")
				continue
			}
			ingress = b
			l.decodeIngress(b)
			continue
		}
		if first != nil {
			l.duplicatef(b.DefRange, first.DefRange, "Duplicate ssh block", "A project has at most one ssh block.")
			continue
		}
		first = b
		c, diags := b.Body.Content(sshSchema)
		l.diags = append(l.diags, diags...)
		if c == nil {
			continue
		}
		ssh := &l.cfg.Project.SSH
		if s, r, ok := l.str(c.Attributes["user"]); ok {
			if s == "" {
				l.errorf(r.rng, "Invalid user", "user must not be empty; leave it out to use ~/.ssh/config or the current user.")
			}
			ssh.User = s
		}
		if n, ok := l.integer(c.Attributes["port"], 1, 65535, "port"); ok {
			ssh.Port = n
		}
		if s, _, ok := l.str(c.Attributes["identity_file"]); ok {
			ssh.IdentityFile = s
		}
		if s, _, ok := l.str(c.Attributes["known_hosts"]); ok {
			ssh.KnownHosts = s
		}
	}
}

// decodeIngress reads the project's ingress block.
func (l *loader) decodeIngress(b *hcl.Block) {
	in := &Ingress{Image: DefaultIngressImage, TLS: DefaultIngressTLS, DeclRange: b.DefRange}
	l.cfg.Project.Ingress = in
	c, diags := b.Body.Content(ingressSchema)
	l.diags = append(l.diags, diags...)
	if c == nil {
		return
	}
	if s, r, ok := l.str(c.Attributes["image"]); ok {
		if s == "" {
			l.errorf(r.rng, "Invalid image", "image must not be empty; leave it out for %s.", DefaultIngressImage)
		} else {
			in.Image = s
		}
	}
	if v, ok := l.oneOf(c.Attributes["tls"], "tls mode", IngressTLS...); ok {
		in.TLS = v
	}
	if a := c.Attributes["nodes"]; a != nil {
		in.NodesRange = a.Expr.Range()
		if !l.checkRefs(a.Expr, scopePlacement, "") {
			return
		}
		v, diags := a.Expr.Value(PlacementContext(UnknownNodeValue()))
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			return
		}
		if ty := v.Type(); ty != cty.DynamicPseudoType && ty != cty.Bool {
			l.errorf(a.Expr.Range(), "Invalid ingress nodes", "nodes must be a bool expression over node, such as node.labels.edge == \"true\"; this one is %s.", ty.FriendlyName())
			return
		}
		in.Nodes = a.Expr
	}
}
