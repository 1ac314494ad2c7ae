package importcompose

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// raw is an HCL expression as source text, for hclwrite.
func raw(expr string) hclwrite.Tokens {
	return hclwrite.Tokens{{Type: hclsyntax.TokenIdent, Bytes: []byte(expr)}}
}

// quote is s as an HCL quoted string (a template with nothing to
// interpolate).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		case (r == '$' || r == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteRune(r)
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func objKey(k string) string {
	if identRE.MatchString(k) {
		return k
	}
	return quote(k)
}

// str is the HCL for a string from the model: markers become var.NAME,
// alone or inside a template.
func (im *importer) str(s, where string) string {
	locs := markerRE.FindAllStringSubmatchIndex(s, -1)
	if len(locs) == 0 {
		return quote(s)
	}
	ref := func(l []int) string {
		i, _ := strconv.Atoi(s[l[2]:l[3]])
		seg := im.interps[i]
		def := (*string)(nil)
		if seg.hasDef {
			d := seg.def
			def = &d
		}
		return im.declare(seg.name, "string", def, false, where)
	}
	if len(locs) == 1 && locs[0][0] == 0 && locs[0][1] == len(s) {
		return ref(locs[0])
	}
	var b strings.Builder
	b.WriteByte('"')
	last := 0
	for _, l := range locs {
		lit := quote(s[last:l[0]])
		b.WriteString(lit[1 : len(lit)-1])
		b.WriteString("${" + ref(l) + "}")
		last = l[1]
	}
	lit := quote(s[last:])
	b.WriteString(lit[1 : len(lit)-1])
	b.WriteByte('"')
	return b.String()
}

func (im *importer) list(items []string, where string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = im.str(it, where)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// object is an HCL object of strings, keys sorted; a nil value is
// taken from a variable of the key's name (Compose reads it from the
// environment).
func (im *importer) object(m map[string]*string, where string, sensitive bool) string {
	var b strings.Builder
	b.WriteString("{\n")
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var v string
		if m[k] == nil {
			v = im.declare(varName(k), "string", nil, sensitive, where)
		} else {
			v = im.str(*m[k], where)
			if sensitive {
				for _, l := range markerRE.FindAllStringSubmatch(*m[k], -1) {
					i, _ := strconv.Atoi(l[1])
					im.vars[im.interps[i].name].sensitive = true
				}
			}
		}
		b.WriteString(objKey(k) + " = " + v + "\n")
	}
	b.WriteString("}")
	return b.String()
}

// varName makes an environment variable's name an HCL identifier.
func varName(k string) string {
	var b strings.Builder
	for i, r := range k {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// write generates the configuration.
func (im *importer) write(name string, p *types.Project) ([]byte, error) {
	services := hclwrite.NewEmptyFile()
	names := slices.Sorted(maps.Keys(p.Services))
	for _, n := range names {
		svc := p.Services[n]
		body := services.Body()
		body.AppendNewline()
		im.service(body.AppendNewBlock("service", []string{projectName(n)}).Body(), svc)
	}

	f := hclwrite.NewEmptyFile()
	body := f.Body()
	files := make([]string, len(im.opts.Files))
	for i, fn := range im.opts.Files {
		files[i] = filepath.Base(fn)
	}
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment,
		Bytes: []byte("# Imported by berth import compose from " + strings.Join(files, ", ") + ".\n" +
			"# Values of ${NAME} interpolations are variables: set them with -var, -var-file or BERTH_VAR_NAME.\n")}})
	body.AppendNewline()
	body.AppendNewBlock("project", []string{name})

	for _, vn := range slices.Sorted(maps.Keys(im.vars)) {
		v := im.vars[vn]
		body.AppendNewline()
		vb := body.AppendNewBlock("variable", []string{vn}).Body()
		vb.SetAttributeRaw("type", raw(v.typ))
		desc := "Used by " + strings.Join(v.from, ", ")
		if im.dotenv[vn] {
			desc += "; set in .env (value not imported)"
		}
		vb.SetAttributeRaw("description", raw(quote(desc)))
		if v.def != nil && !v.sensitive {
			if v.typ == "number" {
				vb.SetAttributeRaw("default", raw(*v.def))
			} else {
				vb.SetAttributeRaw("default", raw(quote(*v.def)))
			}
		}
		if v.sensitive {
			vb.SetAttributeRaw("sensitive", raw("true"))
		}
	}

	for _, n := range im.nodes() {
		body.AppendNewline()
		body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment,
			Bytes: []byte("# A placeholder: set the address (and labels) of a real server.\n")}})
		nb := body.AppendNewBlock("node", []string{n.name}).Body()
		nb.SetAttributeRaw("address", raw(quote(n.name+".example.com")))
		if len(n.labels) > 0 {
			m := map[string]*string{}
			for k, v := range n.labels {
				m[k] = &v
			}
			nb.SetAttributeRaw("labels", raw(im.object(m, "", false)))
		}
	}
	out := append(f.Bytes(), services.Bytes()...)
	return hclwrite.Format(out), nil
}

type placeholderNode struct {
	name   string
	labels map[string]string
}

// nodes are placeholders: one per node.hostname a constraint names, and
// enough others (node1, node2, ...) to carry each label value the
// constraints and spreads use.
func (im *importer) nodes() []placeholderNode {
	var out []placeholderNode
	for _, h := range slices.Sorted(maps.Keys(im.hosts)) {
		out = append(out, placeholderNode{name: h, labels: map[string]string{}})
	}
	need := max(1, im.minNodes)
	for k := range im.spreads {
		if len(im.labels[k]) == 0 {
			im.labels[k] = map[string]bool{"a": true, "b": true}
		}
	}
	for _, vs := range im.labels {
		need = max(need, len(vs))
	}
	for i := len(out); i < need; i++ {
		out = append(out, placeholderNode{name: "node" + strconv.Itoa(i+1), labels: map[string]string{}})
	}
	for _, k := range slices.Sorted(maps.Keys(im.labels)) {
		for i, v := range slices.Sorted(maps.Keys(im.labels[k])) {
			out[i].labels[k] = v
		}
	}
	return out
}

func (im *importer) service(b *hclwrite.Body, s types.ServiceConfig) {
	key := "services." + s.Name
	where := "service " + s.Name
	set := func(attr, expr string) { b.SetAttributeRaw(attr, raw(expr)) }
	if s.Image != "" {
		set("image", im.str(s.Image, where))
	}
	if s.PullPolicy != "" {
		switch s.PullPolicy {
		case "always", "missing", "never":
			set("pull", quote(s.PullPolicy))
		case "if_not_present":
			set("pull", quote("missing"))
		default:
			im.warn(key+".pull_policy", fmt.Sprintf("pull_policy %q is not carried over", s.PullPolicy))
		}
	}
	if d := s.Deploy; d != nil && d.Replicas != nil {
		if seg, ok := im.typed[key+".deploy.replicas"]; ok {
			def := (*string)(nil)
			if seg.hasDef {
				dd := seg.def
				def = &dd
			}
			set("replicas", im.declare(seg.name, "number", def, false, where))
		} else {
			set("replicas", strconv.Itoa(*d.Replicas))
		}
	} else if s.Scale != nil {
		set("replicas", strconv.Itoa(*s.Scale))
	}
	if len(s.Command) > 0 {
		set("command", im.list(s.Command, where))
	}
	if len(s.Entrypoint) > 0 {
		set("entrypoint", im.list(s.Entrypoint, where))
	}
	im.environment(b, s, key, where)
	if len(s.Labels) > 0 {
		m := map[string]*string{}
		for k, v := range s.Labels {
			if strings.HasPrefix(k, "berth.") {
				im.warn(key+".labels", fmt.Sprintf("label %q is not carried over: berth.* labels are berth's own", k))
				continue
			}
			m[k] = &v
		}
		if len(m) > 0 {
			set("labels", im.object(m, where, false))
		}
	}
	im.restart(b, s, key)
	if s.StopGracePeriod != nil {
		set("stop_grace_period", quote(fmtDuration(*s.StopGracePeriod)))
	}
	if len(s.DependsOn) > 0 {
		var deps []string
		for _, n := range slices.Sorted(maps.Keys(s.DependsOn)) {
			if c := s.DependsOn[n].Condition; c == types.ServiceConditionCompletedSuccessfully {
				im.warn(key+".depends_on."+n, "condition "+c+" is not carried over: berth rolls this service out after "+n+" is healthy, it does not wait for it to exit")
			}
			deps = append(deps, quote(projectName(n)))
		}
		set("depends_on", "["+strings.Join(deps, ", ")+"]")
	}
	if s.User != "" {
		set("user", im.str(s.User, where))
	}
	if s.WorkingDir != "" {
		set("working_dir", im.str(s.WorkingDir, where))
	}
	if s.Hostname != "" {
		set("hostname", im.str(s.Hostname, where))
	}
	if len(s.ExtraHosts) > 0 {
		var hs []string
		for _, h := range slices.Sorted(maps.Keys(s.ExtraHosts)) {
			for _, ip := range s.ExtraHosts[h] {
				hs = append(hs, h+":"+ip)
			}
		}
		set("extra_hosts", im.list(hs, where))
	}
	replicas := 1
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		replicas = *s.Deploy.Replicas
	} else if s.Scale != nil {
		replicas = *s.Scale
	}
	perNode := 0
	if s.Deploy != nil {
		perNode = int(s.Deploy.Placement.MaxReplicas)
	}
	if slices.ContainsFunc(s.Ports, func(p types.ServicePortConfig) bool { return p.Published != "" }) {
		perNode = 1
	}
	if perNode > 0 {
		im.minNodes = max(im.minNodes, (replicas+perNode-1)/perNode)
	}
	im.build(b, s, key, where)
	im.ports(b, s, key)
	im.placement(b, s, key, where)
	im.resources(b, s, key)
	im.health(b, s, key, where)
	im.update(b, s, key)
	im.volumes(b, s, key, where)
}

func (im *importer) environment(b *hclwrite.Body, s types.ServiceConfig, key, where string) {
	env := map[string]*string{}
	for _, ef := range s.EnvFiles {
		path := ef.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(im.workDir, path)
		}
		names := envFileNames(path)
		if names == nil {
			im.warn(key+".env_file", fmt.Sprintf("env file %s could not be read: its variables are not carried over", ef.Path))
		}
		for _, n := range names {
			env[n] = nil // from a variable of the same name: the file's values stay out of the HCL
		}
	}
	maps.Copy(env, s.Environment)
	plain, secret := map[string]*string{}, map[string]*string{}
	for k, v := range env {
		if secretName.MatchString(k) {
			secret[k] = v
		} else {
			plain[k] = v
		}
	}
	if len(plain) > 0 {
		b.SetAttributeRaw("env", raw(im.object(plain, where, false)))
	}
	for _, sc := range s.Secrets {
		target := sc.Target
		if target == "" {
			target = sc.Source
		}
		envName := strings.ToUpper(varName(filepath.Base(target)))
		vn := varName(sc.Source)
		im.declare(vn, "string", nil, true, where+" (Compose secret "+sc.Source+")")
		v := "__secret__" + vn
		secret[envName] = &v
	}
	if len(s.Secrets) > 0 {
		im.warn(key+".secrets", "Compose mounts secrets as files under /run/secrets; berth passes each as a sensitive environment variable (sensitive_env) from a sensitive variable")
	}
	if len(secret) > 0 {
		o := im.object(secret, where, true)
		o = regexp.MustCompile(`"__secret__([A-Za-z0-9_]+)"`).ReplaceAllString(o, "var.$1")
		b.SetAttributeRaw("sensitive_env", raw(o))
	}
}

func (im *importer) restart(b *hclwrite.Body, s types.ServiceConfig, key string) {
	policy := ""
	if s.Restart != "" {
		r, n, _ := strings.Cut(s.Restart, ":")
		policy = r
		if n != "" {
			im.warn(key+".restart", "the retry count "+n+" is not carried over")
		}
	}
	if d := s.Deploy; d != nil && d.RestartPolicy != nil {
		rp := d.RestartPolicy
		switch rp.Condition {
		case "none":
			policy = "no"
		case "on-failure":
			policy = "on-failure"
		case "any", "":
			policy = "always"
		}
		if rp.Delay != nil {
			im.warn(key+".deploy.restart_policy.delay", "not carried over: Docker restarts with its own back-off")
		}
		if rp.MaxAttempts != nil {
			im.warn(key+".deploy.restart_policy.max_attempts", "not carried over")
		}
		if rp.Window != nil {
			im.warn(key+".deploy.restart_policy.window", "not carried over")
		}
	}
	if policy != "" {
		if !slices.Contains([]string{"no", "always", "on-failure", "unless-stopped"}, policy) {
			im.warn(key+".restart", fmt.Sprintf("restart policy %q is not carried over", policy))
			return
		}
		b.SetAttributeRaw("restart", raw(quote(policy)))
	}
}

func (im *importer) build(b *hclwrite.Body, s types.ServiceConfig, key, where string) {
	if s.Build == nil {
		return
	}
	bb := b.AppendNewBlock("build", nil).Body()
	ctx := s.Build.Context
	if ctx == "" {
		ctx = "."
	}
	if !filepath.IsAbs(ctx) && !strings.Contains(ctx, "://") {
		abs := filepath.Join(im.workDir, ctx)
		if out, err := filepath.Abs(im.opts.OutDir); err == nil {
			if rel, err := filepath.Rel(out, abs); err == nil {
				ctx = filepath.ToSlash(rel)
			}
		}
	} else if strings.Contains(ctx, "://") {
		im.warn(key+".build.context", "a remote build context is not carried over: berth builds from a local directory")
	}
	bb.SetAttributeRaw("context", raw(quote(ctx)))
	if s.Build.Dockerfile != "" && s.Build.Dockerfile != "Dockerfile" {
		bb.SetAttributeRaw("dockerfile", raw(quote(s.Build.Dockerfile)))
	}
	if len(s.Build.Args) > 0 {
		bb.SetAttributeRaw("args", raw(im.object(s.Build.Args, where, false)))
	}
	if s.Build.Target != "" {
		bb.SetAttributeRaw("target", raw(im.str(s.Build.Target, where)))
	}
}

func (im *importer) ports(b *hclwrite.Body, s types.ServiceConfig, key string) {
	for i, p := range s.Ports {
		pk := fmt.Sprintf("%s.ports[%d]", key, i)
		ingress := false
		if mode, ok := im.loc.value(pk + ".mode"); ok && mode == "ingress" {
			switch {
			case p.Protocol != "" && p.Protocol != "tcp", p.HostIP != "", p.Published == "", strings.Contains(p.Published, "-"):
				im.warn(pk+".mode", "ingress mode is not carried over for this port: berth's routing mesh takes one fixed published TCP port on every address (host mode is used)")
			default:
				ingress = true
				im.warn(pk+".mode", "carried over as mode = \"ingress\": berth's routing mesh is HTTP only (a Caddy proxy on each ingress node); set mode = \"host\" for other TCP traffic")
			}
		}
		pb := b.AppendNewBlock("port", nil).Body()
		pb.SetAttributeRaw("target", raw(strconv.Itoa(int(p.Target))))
		if p.Published != "" {
			if strings.Contains(p.Published, "-") {
				im.warn(pk, fmt.Sprintf("the published port range %s is not carried over: berth assigns a port", p.Published))
			} else {
				pb.SetAttributeRaw("published", raw(p.Published))
			}
		}
		if p.Protocol != "" && p.Protocol != "tcp" {
			pb.SetAttributeRaw("protocol", raw(quote(p.Protocol)))
		}
		if p.HostIP != "" {
			pb.SetAttributeRaw("host_ip", raw(quote(p.HostIP)))
		}
		if ingress {
			pb.SetAttributeRaw("mode", raw(quote("ingress")))
		}
	}
}

var constraintRE = regexp.MustCompile(`^\s*([A-Za-z0-9_.\-]+)\s*(==|!=)\s*(.+?)\s*$`)

func (im *importer) placement(b *hclwrite.Body, s types.ServiceConfig, key, where string) {
	d := s.Deploy
	if d == nil {
		return
	}
	if d.Mode == "global" {
		im.warn(key+".deploy.mode", "mode: global is carried over as max_per_node = 1: set replicas to the number of nodes")
	}
	var conds []string
	for i, c := range d.Placement.Constraints {
		ck := fmt.Sprintf("%s.deploy.placement.constraints[%d]", key, i)
		m := constraintRE.FindStringSubmatch(c)
		if m == nil {
			im.warn(ck, fmt.Sprintf("constraint %q is not carried over", c))
			continue
		}
		field, op, val := m[1], m[2], m[3]
		valExpr := im.str(val, where)
		switch {
		case strings.HasPrefix(field, "node.labels."):
			label := strings.TrimPrefix(field, "node.labels.")
			if op == "==" && !strings.Contains(val, "__berthvar") {
				if im.labels[label] == nil {
					im.labels[label] = map[string]bool{}
				}
				im.labels[label][val] = true
			}
			lhs := "node.labels." + label
			if !identRE.MatchString(label) {
				lhs = "lookup(node.labels, " + quote(label) + ", \"\")"
			}
			conds = append(conds, lhs+" "+op+" "+valExpr)
		case field == "node.hostname":
			if op == "==" && !strings.Contains(val, "__berthvar") {
				im.hosts[projectName(val)] = true
			}
			conds = append(conds, "node.name "+op+" "+quote(projectName(val)))
		case field == "node.platform.os":
			conds = append(conds, "node.os "+op+" "+valExpr)
		case field == "node.platform.arch":
			arch := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[val]
			if arch == "" {
				arch = val
			}
			conds = append(conds, "node.arch "+op+" "+quote(arch))
		default:
			im.warn(ck, fmt.Sprintf("constraint %q is not carried over: berth has no %s (it has node.name, node.labels, node.os, node.arch)", c, field))
		}
	}
	spread := ""
	for i, pref := range d.Placement.Preferences {
		pk := fmt.Sprintf("%s.deploy.placement.preferences[%d]", key, i)
		label, ok := strings.CutPrefix(pref.Spread, "node.labels.")
		switch {
		case !ok:
			im.warn(pk, fmt.Sprintf("spread over %q is not carried over", pref.Spread))
		case spread != "":
			im.warn(pk, "a second spread preference is not carried over: berth spreads over one expression")
		default:
			im.spreads[label] = true
			spread = "node.labels." + label
			if !identRE.MatchString(label) {
				spread = "lookup(node.labels, " + quote(label) + ", \"\")"
			}
		}
	}
	maxPer := d.Placement.MaxReplicas
	if d.Mode == "global" {
		maxPer = 1
	}
	if len(conds) == 0 && spread == "" && maxPer == 0 {
		return
	}
	pb := b.AppendNewBlock("placement", nil).Body()
	if len(conds) > 0 {
		pb.SetAttributeRaw("constraint", raw(strings.Join(conds, " && ")))
	}
	if spread != "" {
		pb.SetAttributeRaw("spread", raw(spread))
	}
	if maxPer > 0 {
		pb.SetAttributeRaw("max_per_node", raw(strconv.FormatUint(maxPer, 10)))
	}
}

func (im *importer) resources(b *hclwrite.Body, s types.ServiceConfig, key string) {
	var cpus float32
	var mem int64
	if s.CPUS > 0 {
		cpus = s.CPUS
	}
	if s.MemLimit > 0 {
		mem = int64(s.MemLimit)
	}
	if d := s.Deploy; d != nil {
		lim, res := d.Resources.Limits, d.Resources.Reservations
		if lim != nil {
			if lim.NanoCPUs > 0 {
				cpus = float32(lim.NanoCPUs)
			}
			if lim.MemoryBytes > 0 {
				mem = int64(lim.MemoryBytes)
			}
		}
		if res != nil {
			rk := key + ".deploy.resources.reservations"
			if res.NanoCPUs > 0 {
				if cpus == 0 {
					cpus = float32(res.NanoCPUs)
				} else {
					im.warn(rk+".cpus", "berth reserves what it limits: the limit is used for both")
				}
			}
			if res.MemoryBytes > 0 {
				if mem == 0 {
					mem = int64(res.MemoryBytes)
				} else {
					im.warn(rk+".memory", "berth reserves what it limits: the limit is used for both")
				}
			}
		}
	}
	if cpus == 0 && mem == 0 {
		return
	}
	rb := b.AppendNewBlock("resources", nil).Body()
	if cpus > 0 {
		rb.SetAttributeRaw("cpus", raw(strconv.FormatFloat(float64(cpus), 'f', -1, 32)))
	}
	if mem > 0 {
		rb.SetAttributeRaw("memory", raw(quote(fmtSize(mem))))
	}
}

func (im *importer) health(b *hclwrite.Body, s types.ServiceConfig, key, where string) {
	h := s.HealthCheck
	if h == nil || h.Disable || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return
	}
	var cmd []string
	switch h.Test[0] {
	case "CMD":
		cmd = h.Test[1:]
	case "CMD-SHELL":
		cmd = []string{"sh", "-c", strings.Join(h.Test[1:], " ")}
	default:
		cmd = h.Test
	}
	if len(cmd) == 0 {
		im.warn(key+".healthcheck.test", "an empty test is not carried over")
		return
	}
	hb := b.AppendNewBlock("health", nil).Body()
	hb.SetAttributeRaw("cmd", raw(im.list(cmd, where)))
	if h.Interval != nil {
		hb.SetAttributeRaw("interval", raw(quote(fmtDuration(*h.Interval))))
	}
	if h.Timeout != nil {
		hb.SetAttributeRaw("timeout", raw(quote(fmtDuration(*h.Timeout))))
	}
	if h.Retries != nil {
		hb.SetAttributeRaw("retries", raw(strconv.FormatUint(*h.Retries, 10)))
	}
	if h.StartPeriod != nil {
		hb.SetAttributeRaw("start_period", raw(quote(fmtDuration(*h.StartPeriod))))
	}
	if h.StartInterval != nil {
		im.warn(key+".healthcheck.start_interval", "not carried over: berth probes at interval")
	}
}

func (im *importer) update(b *hclwrite.Body, s types.ServiceConfig, key string) {
	d := s.Deploy
	if d == nil {
		return
	}
	if d.RollbackConfig != nil {
		im.warn(key+".deploy.rollback_config", "not carried over: berth rolls back the whole plan, with the update settings")
	}
	u := d.UpdateConfig
	if u == nil {
		return
	}
	uk := key + ".deploy.update_config"
	ub := b.AppendNewBlock("update", nil).Body()
	if u.Parallelism != nil {
		if *u.Parallelism == 0 {
			im.warn(uk+".parallelism", "parallelism 0 (all at once) is not carried over: berth's default 1 is used")
		} else {
			ub.SetAttributeRaw("parallelism", raw(strconv.FormatUint(*u.Parallelism, 10)))
		}
	}
	if u.Order != "" {
		ub.SetAttributeRaw("order", raw(quote(u.Order)))
	}
	switch u.FailureAction {
	case "":
	case "rollback", "pause":
		ub.SetAttributeRaw("failure_action", raw(quote(u.FailureAction)))
	default:
		im.warn(uk+".failure_action", fmt.Sprintf("failure_action %q is not carried over: berth rolls back or pauses", u.FailureAction))
	}
	if u.Monitor != 0 {
		ub.SetAttributeRaw("monitor", raw(quote(fmtDuration(u.Monitor))))
	}
	if u.Delay != 0 {
		ub.SetAttributeRaw("delay", raw(quote(fmtDuration(u.Delay))))
	}
	if u.MaxFailureRatio != 0 {
		im.warn(uk+".max_failure_ratio", "not carried over: berth stops at the first failure")
	}
}

func (im *importer) volumes(b *hclwrite.Body, s types.ServiceConfig, key, where string) {
	for i, v := range s.Volumes {
		vk := fmt.Sprintf("%s.volumes[%d]", key, i)
		switch v.Type {
		case types.VolumeTypeVolume, types.VolumeTypeBind:
		default:
			im.warn(vk, fmt.Sprintf("a %s mount is not carried over", v.Type))
			continue
		}
		if v.Source == "" {
			im.warn(vk, "an anonymous volume is not carried over: give it a name")
			continue
		}
		if v.Type == types.VolumeTypeBind && !filepath.IsAbs(v.Source) && !strings.Contains(v.Source, "__berthvar") {
			im.warn(vk, fmt.Sprintf("the bind mount of the relative path %s is not carried over: berth mounts absolute paths on the node", v.Source))
			continue
		}
		vb := b.AppendNewBlock("volume", nil).Body()
		vb.SetAttributeRaw("source", raw(im.str(v.Source, where)))
		vb.SetAttributeRaw("target", raw(quote(v.Target)))
		if v.ReadOnly {
			vb.SetAttributeRaw("read_only", raw("true"))
		}
	}
}
