package config

import "github.com/hashicorp/hcl/v2"

var projectSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "ssh"}, {Type: "swarm"}},
}

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
	var first, swarm *hcl.Block
	for _, b := range content.Blocks {
		if b.Type == "swarm" {
			l.decodeSwarm(b, &swarm)
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
