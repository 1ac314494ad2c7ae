package config

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// MaxReplicas bounds a service's replicas: far beyond a few hundred nodes,
// small enough that a typo cannot make a plan of millions of containers.
const MaxReplicas = 10000

var serviceSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "image"},
		{Name: "replicas"},
		{Name: "command"},
		{Name: "entrypoint"},
		{Name: "env"},
		{Name: "sensitive_env"},
		{Name: "labels"},
		{Name: "restart"},
		{Name: "stop_grace_period"},
		{Name: "depends_on"},
		{Name: "user"},
		{Name: "working_dir"},
		{Name: "hostname"},
		{Name: "extra_hosts"},
		{Name: "pull"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "port"},
		{Type: "placement"},
		{Type: "resources"},
		{Type: "health"},
		{Type: "update"},
		{Type: "volume"},
		{Type: "build"},
	},
}

var portSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "target", Required: true}, {Name: "published"}, {Name: "protocol"}, {Name: "host_ip"},
	{Name: "mode"}, {Name: "host"}, {Name: "path"},
}}

var placementSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "constraint"}, {Name: "spread"}, {Name: "max_per_node"},
}}

var resourcesSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "cpus"}, {Name: "memory"},
}}

var healthSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "http"}, {Name: "tcp"}, {Name: "cmd"}, {Name: "port"},
	{Name: "interval"}, {Name: "timeout"}, {Name: "retries"}, {Name: "start_period"},
}}

var updateSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "parallelism"}, {Name: "order"}, {Name: "failure_action"}, {Name: "monitor"}, {Name: "delay"},
	{Name: "reschedule"},
}}

var volumeSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "source", Required: true}, {Name: "target", Required: true}, {Name: "read_only"},
}}

var buildSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "context", Required: true}, {Name: "dockerfile"}, {Name: "args"}, {Name: "target"},
}}

// Enumerations, as written in the configuration.
var (
	RestartPolicies = []string{"no", "always", "on-failure", "unless-stopped"}
	PullPolicies    = []string{"missing", "always", "never"}
	Protocols       = []string{"tcp", "udp"}
	PortModes       = []string{ModeHost, ModeIngress}
	UpdateOrders    = []string{"start-first", "stop-first"}
	FailureActions  = []string{"rollback", "pause"}
)

// svcExtra is what the cross-service checks need beyond the Service.
type svcExtra struct {
	dependsRanges []hcl.Range // per depends_on element, when written as a list
	dependsOK     bool
	replicasSet   bool
	badPlacement  bool // a placement expression was reported already
}

// decodeServices reads every service block.
func (l *loader) decodeServices(blocks hcl.Blocks) {
	byName := map[string]*Service{}
	l.svcExtra = map[*Service]*svcExtra{}
	l.serviceNames = map[string]bool{}
	for _, b := range blocks {
		l.serviceNames[b.Labels[0]] = true
	}
	for _, b := range blocks {
		name := b.Labels[0]
		if !ValidName(name) {
			l.errorf(b.LabelRanges[0], "Invalid service name", "%q is not a valid service name. %s", name, nameRule)
		} else if name == IngressServiceName || name == IngressEdgeServiceName {
			l.errorf(b.LabelRanges[0], "Reserved service name", "%q is the name of berth's ingress proxies; choose another name.", name)
		}
		if prev, dup := byName[name]; dup {
			l.duplicatef(b.DefRange, prev.DeclRange, "Duplicate service", "A service named %q was already declared.", name)
			continue
		}
		s := &Service{
			Name:            name,
			DeclRange:       b.DefRange,
			AttrRanges:      map[string]hcl.Range{},
			Replicas:        DefaultReplicas,
			Restart:         DefaultRestart,
			StopGracePeriod: DefaultStopGracePeriod,
			Pull:            DefaultPull,
			Env:             map[string]EnvVar{},
			Labels:          map[string]string{},
			Update: Update{
				Parallelism:   DefaultUpdateParallelism,
				Order:         DefaultUpdateOrder,
				FailureAction: DefaultFailureAction,
				Monitor:       DefaultUpdateMonitor,
				Delay:         DefaultUpdateDelay,
			},
		}
		byName[name] = s
		l.cfg.Services = append(l.cfg.Services, s)
		l.svcExtra[s] = &svcExtra{}
		content, diags := b.Body.Content(serviceSchema)
		l.diags = append(l.diags, diags...)
		if content == nil {
			continue
		}
		l.decodeService(s, content, diags.HasErrors())
	}
	slices.SortStableFunc(l.cfg.Services, func(a, b *Service) int { return strings.Compare(a.Name, b.Name) })
}

// record notes the range of a set attribute under its path.
func record(s *Service, path string, a *hcl.Attribute) {
	if a != nil {
		s.AttrRanges[path] = a.Expr.Range()
	}
}

// decodeService fills s in; badBody says the body had errors already (an
// unknown argument may well be a misspelt image).
func (l *loader) decodeService(s *Service, content *hcl.BodyContent, badBody bool) {
	attrs := content.Attributes
	for name, a := range attrs {
		record(s, name, a)
	}
	x := l.svcExtra[s]

	imageSt := evalUnset
	if r, st := l.eval(attrs["image"], cty.String); st == evalOK {
		v := r.val.AsString()
		l.warnSensitive(r, "image")
		if !validImage(v) {
			hint := ""
			if strings.ToLower(v) != v && validImage(strings.ToLower(v)) {
				hint = " Repository names must be lowercase."
			}
			l.errorf(r.rng, "Invalid image reference",
				"%s is not an image reference such as nginx, nginx:1.27, ghcr.io/org/app:v2 or name@sha256:<digest>.%s", l.show(r, fmt.Sprintf("%q", v)), hint)
		}
		s.Image = v
		imageSt = st
	} else {
		imageSt = st
	}
	if n, ok := l.integer(attrs["replicas"], 0, MaxReplicas, "replicas"); ok {
		s.Replicas = n
		x.replicasSet = true
	}
	l.decodeValueFields(s, l.deferServiceRefs(s, attrs))
	if v, ok := l.oneOf(attrs["restart"], "restart policy", RestartPolicies...); ok {
		s.Restart = v
	}
	if d, ok := l.duration(attrs["stop_grace_period"]); ok {
		s.StopGracePeriod = d
	}
	if a := attrs["depends_on"]; a != nil {
		if v, _, ok := l.stringList(a); ok {
			s.DependsOn = v
			x.dependsOK = true
			if elems, diags := hcl.ExprList(a.Expr); !diags.HasErrors() && len(elems) == len(v) {
				for _, e := range elems {
					x.dependsRanges = append(x.dependsRanges, e.Range())
				}
			}
		}
	}
	if v, r, ok := l.str(attrs["user"]); ok {
		if v == "" {
			l.errorf(r.rng, "Invalid user", "user must not be empty; leave it out to use the image's.")
		}
		s.User = v
	}
	if v, r, ok := l.str(attrs["working_dir"]); ok {
		if !strings.HasPrefix(v, "/") {
			l.errorf(r.rng, "Invalid working_dir", "working_dir must be an absolute path in the container.")
		}
		s.WorkingDir = v
	}
	if v, r, ok := l.str(attrs["hostname"]); ok {
		if net.ParseIP(v) != nil || !validHostname(v) {
			l.errorf(r.rng, "Invalid hostname", "%s is not a host name: letters, digits and '-', in dot-separated labels of at most 63 characters.", l.show(r, fmt.Sprintf("%q", v)))
		}
		s.Hostname = v
	}
	if v, r, ok := l.stringList(attrs["extra_hosts"]); ok {
		for _, h := range v {
			host, ip, found := strings.Cut(h, ":")
			if !found || !validHostname(host) || net.ParseIP(host) != nil || (ip != "host-gateway" && net.ParseIP(ip) == nil) {
				l.errorf(r.rng, "Invalid extra_hosts entry", "%s must be \"HOST:IP\", like \"db.internal:10.0.0.5\" or \"host.docker.internal:host-gateway\".", l.show(r, fmt.Sprintf("%q", h)))
				continue
			}
			s.ExtraHosts = append(s.ExtraHosts, h)
		}
	}
	if v, ok := l.oneOf(attrs["pull"], "pull policy", PullPolicies...); ok {
		s.Pull = v
	}

	blocks := map[string][]*hcl.Block{}
	for _, b := range content.Blocks {
		blocks[b.Type] = append(blocks[b.Type], b)
	}
	for _, t := range []string{"placement", "resources", "health", "update", "build"} {
		bs := blocks[t]
		for _, dup := range bs[min(1, len(bs)):] {
			l.duplicatef(dup.DefRange, bs[0].DefRange, fmt.Sprintf("Duplicate %s block", t), "A service has at most one %s block.", t)
		}
		if len(bs) > 0 {
			s.AttrRanges[t] = bs[0].DefRange
		}
	}
	for i, b := range blocks["port"] {
		l.decodePort(s, i, b)
	}
	if bs := blocks["placement"]; len(bs) > 0 {
		l.decodePlacement(s, bs[0])
	}
	if bs := blocks["resources"]; len(bs) > 0 {
		l.decodeResources(s, bs[0])
	}
	if bs := blocks["update"]; len(bs) > 0 {
		l.decodeUpdate(s, bs[0])
	}
	for i, b := range blocks["volume"] {
		l.decodeVolume(s, i, b)
	}
	if bs := blocks["build"]; len(bs) > 0 {
		l.decodeBuild(s, bs[0])
	}
	// After ports: health's default port is the first port's target.
	if bs := blocks["health"]; len(bs) > 0 {
		l.decodeHealth(s, bs[0])
	}

	if !badBody && (imageSt == evalUnset || imageSt == evalNull) && len(blocks["build"]) == 0 {
		l.errorf(s.DeclRange, "Service has no image", "The service %q needs an image to run, or a build block to build one.", s.Name)
	}
	l.checkPublishedPorts(s)
}

// decodeValueFields decodes the attributes that may refer to other services
// (refFields): at load for those that do not, in Resolve for those that do.
func (l *loader) decodeValueFields(s *Service, attrs hcl.Attributes) {
	if v, _, ok := l.stringList(attrs["command"]); ok {
		s.Command = v
	}
	if v, _, ok := l.stringList(attrs["entrypoint"]); ok {
		s.Entrypoint = v
	}
	if m, sens, r, ok := l.stringMap(attrs["env"]); ok {
		for k, v := range m {
			if !l.validEnvName(k, r) {
				continue
			}
			s.Env[k] = EnvVar{Value: v, Sensitive: sens[k]}
		}
	}
	if m, _, r, ok := l.stringMap(attrs["sensitive_env"]); ok {
		for _, k := range sortedKeys(m) {
			if !l.validEnvName(k, r) {
				continue
			}
			if _, dup := s.Env[k]; dup {
				l.errorf(r.rng, "Duplicate environment variable", "%s is set in both env and sensitive_env; set it in one of them.", k)
				continue
			}
			s.Env[k] = EnvVar{Value: m[k], Sensitive: true}
			l.addSensitive(m[k])
		}
	}
	if m, _, r, ok := l.stringMap(attrs["labels"]); ok {
		l.warnSensitive(r, "labels")
		for _, k := range sortedKeys(m) {
			switch {
			case k == "":
				l.errorf(r.rng, "Invalid label", "A label name must not be empty.")
			case strings.HasPrefix(k, "berth."):
				l.errorf(r.rng, "Reserved label", "Labels starting with \"berth.\" are berth's own (%s).", k)
			default:
				s.Labels[k] = m[k]
			}
		}
	}
}

// validEnvName checks an environment variable's name.
func (l *loader) validEnvName(k string, r result) bool {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		l.errorf(r.rng, "Invalid environment variable name", "%q is not a valid environment variable name: it must be non-empty and contain no '='.", k)
		return false
	}
	return true
}

// blockContent decodes a nested block, records its attributes' ranges under
// prefix, and returns its attributes.
func (l *loader) blockContent(s *Service, b *hcl.Block, schema *hcl.BodySchema, prefix string) hcl.Attributes {
	s.AttrRanges[prefix] = b.DefRange
	content, diags := b.Body.Content(schema)
	l.diags = append(l.diags, diags...)
	if content == nil {
		return hcl.Attributes{}
	}
	for name, a := range content.Attributes {
		record(s, prefix+"."+name, a)
	}
	return content.Attributes
}

func (l *loader) decodePort(s *Service, i int, b *hcl.Block) {
	prefix := fmt.Sprintf("port[%d]", i)
	attrs := l.blockContent(s, b, portSchema, prefix)
	l.require(attrs, "target")
	p := Port{Protocol: DefaultProtocol, DeclRange: b.DefRange}
	if n, ok := l.integer(attrs["target"], 1, 65535, "port"); ok {
		p.Target = n
	}
	if n, ok := l.integer(attrs["published"], 1, 65535, "port"); ok {
		p.Published = n
	}
	if v, ok := l.oneOf(attrs["protocol"], "protocol", Protocols...); ok {
		p.Protocol = v
	}
	if v, r, ok := l.str(attrs["host_ip"]); ok {
		if net.ParseIP(v) == nil {
			l.errorf(r.rng, "Invalid host_ip", "host_ip must be an IP address of the node, such as \"127.0.0.1\", not %s.", l.show(r, fmt.Sprintf("%q", v)))
		}
		p.HostIP = v
	}
	if v, ok := l.oneOf(attrs["mode"], "port mode", PortModes...); ok && v == ModeIngress {
		p.Mode = v
	}
	if v, r, ok := l.str(attrs["host"]); ok {
		if v == "" || strings.ContainsAny(v, "/: \t") {
			l.errorf(r.rng, "Invalid host", "host must be a host name such as \"app.example.com\" (or \"*.example.com\"), not %s.", l.show(r, fmt.Sprintf("%q", v)))
		}
		p.HostName = v
	}
	if v, r, ok := l.str(attrs["path"]); ok {
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "*?# \t") {
			l.errorf(r.rng, "Invalid path", "path must be a path prefix starting with '/', such as \"/api\", not %s.", l.show(r, fmt.Sprintf("%q", v)))
		}
		p.Path = v
	}
	if p.Ingress() {
		ingressOnly := "An ingress port is HTTP, served by the project's proxy (Caddy) on every ingress node; TCP and UDP ports stay in host mode."
		switch {
		case p.Protocol == "udp":
			l.errorf(s.Range(prefix+".protocol"), "UDP port in ingress mode", "The ingress proxies HTTP only: a udp port must use mode = \"host\" (the default). %s", ingressOnly)
		case attrs["published"] == nil:
			l.errorf(b.DefRange, "Ingress port has no published port", "An ingress port needs published: the port the proxy serves on every ingress node.")
		}
		if attrs["host_ip"] != nil {
			l.errorf(s.Range(prefix+".host_ip"), "host_ip in ingress mode", "host_ip applies to host mode ports: an ingress port's replicas listen on their node's private address, and the proxy on every address.")
		}
	} else {
		for _, a := range []string{"host", "path"} {
			if attrs[a] != nil {
				l.errorf(s.Range(prefix+"."+a), fmt.Sprintf("%s without ingress", a),
					"%s routes HTTP requests of an ingress port: it needs mode = \"ingress\" in this port block.", a)
			}
		}
	}
	s.Ports = append(s.Ports, p)
}

// checkPublishedPorts reports a host port published twice by one service.
// An unspecified host_ip binds every address, so it clashes with any other.
func (l *loader) checkPublishedPorts(s *Service) {
	for i, p := range s.Ports {
		if p.Published == 0 || p.Ingress() {
			continue // ingress routes are checked across services
		}
		for j := 0; j < i; j++ {
			q := s.Ports[j]
			if q.Ingress() || !p.Host().Overlaps(q.Host()) {
				continue
			}
			l.duplicatef(s.Range(fmt.Sprintf("port[%d].published", i)), s.Range(fmt.Sprintf("port[%d].published", j)),
				"Duplicate published port", "The service %q publishes host port %s twice.", s.Name, p.Host())
			break
		}
	}
}

func (l *loader) decodePlacement(s *Service, b *hcl.Block) {
	attrs := l.blockContent(s, b, placementSchema, "placement")
	if a := attrs["constraint"]; a != nil {
		s.Placement.Constraint = a.Expr
		l.checkPlacementExpr(s, a, true)
	}
	if a := attrs["spread"]; a != nil {
		s.Placement.Spread = a.Expr
		l.checkPlacementExpr(s, a, false)
	}
	if n, ok := l.integer(attrs["max_per_node"], 0, MaxReplicas, "max_per_node"); ok {
		s.Placement.MaxPerNode = n
	}
}

// checkPlacementExpr type-checks a placement expression against a node whose
// every attribute is unknown: constraint must be bool, spread a single value.
func (l *loader) checkPlacementExpr(s *Service, a *hcl.Attribute, constraint bool) {
	if !l.checkRefs(a.Expr, scopePlacement, "") {
		l.svcExtra[s].badPlacement = true
		return
	}
	v, diags := a.Expr.Value(PlacementContext(UnknownNodeValue()))
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		l.svcExtra[s].badPlacement = true
		return
	}
	ty := v.Type()
	switch {
	case ty == cty.DynamicPseudoType:
	case constraint && ty != cty.Bool:
		l.errorf(a.Expr.Range(), "Invalid placement constraint", "The constraint must be a bool expression, such as node.labels.role == \"web\"; this one is %s.", ty.FriendlyName())
		l.svcExtra[s].badPlacement = true
	case !constraint && !ty.IsPrimitiveType():
		l.errorf(a.Expr.Range(), "Invalid placement spread", "spread must be a single value per node (a string, number or bool), such as node.labels.zone; this one is %s.", ty.FriendlyName())
		l.svcExtra[s].badPlacement = true
	}
}

func (l *loader) decodeResources(s *Service, b *hcl.Block) {
	attrs := l.blockContent(s, b, resourcesSchema, "resources")
	if f, r, ok := l.number(attrs["cpus"]); ok {
		if math.IsNaN(f) || f < 0.01 || f > 1024 {
			l.errorf(r.rng, "Invalid cpus", "cpus must be a number of CPUs between 0.01 and 1024, such as 0.5 or 2.")
		} else {
			s.Resources.NanoCPUs = int64(math.Round(f * 1e9))
		}
	}
	if a := attrs["memory"]; a != nil {
		if n, ok := l.size(a); ok {
			if n < MinMemory {
				l.errorf(a.Expr.Range(), "Invalid size", "memory must be at least 6MiB, Docker's smallest limit.")
			} else {
				s.Resources.MemoryBytes = n
			}
		}
	}
}

func (l *loader) decodeHealth(s *Service, b *hcl.Block) {
	attrs := l.blockContent(s, b, healthSchema, "health")
	h := &Health{
		Interval:    DefaultHealthInterval,
		Timeout:     DefaultHealthTimeout,
		Retries:     DefaultHealthRetries,
		StartPeriod: DefaultHealthStartPeriod,
	}
	s.Health = h
	var checks []string
	if v, r, ok := l.str(attrs["http"]); ok {
		if !strings.HasPrefix(v, "/") {
			l.errorf(r.rng, "Invalid health check", "http is the path to GET, starting with '/', such as \"/healthz\".")
		}
		h.HTTP = v
		checks = append(checks, "http")
	}
	if v, ok := l.boolean(attrs["tcp"]); ok && v {
		h.TCP = true
		checks = append(checks, "tcp")
	}
	if v, r, ok := l.stringList(attrs["cmd"]); ok {
		switch {
		case len(v) == 0:
			l.errorf(r.rng, "Invalid health check", "cmd must not be empty.")
		case v[0] == "CMD" || v[0] == "CMD-SHELL" || v[0] == "NONE":
			l.errorf(r.rng, "Invalid health check", "cmd is the command itself, without Docker's %q prefix; for a shell, write [\"sh\", \"-c\", \"...\"].", v[0])
		}
		h.Cmd = v
		checks = append(checks, "cmd")
	}
	if p, ok := l.integer(attrs["port"], 1, 65535, "port"); ok {
		h.Port = p
	}
	if d, ok := l.duration(attrs["interval"]); ok {
		h.Interval = d
	}
	if d, ok := l.duration(attrs["timeout"]); ok {
		h.Timeout = d
	}
	if n, ok := l.integer(attrs["retries"], 1, 100, "retries"); ok {
		h.Retries = n
	}
	if d, ok := l.duration(attrs["start_period"]); ok {
		h.StartPeriod = d
	}
	for _, k := range []string{"interval", "timeout"} {
		if a := attrs[k]; a != nil && ((k == "interval" && h.Interval == 0) || (k == "timeout" && h.Timeout == 0)) {
			l.errorf(a.Expr.Range(), "Invalid duration", "%s must be more than zero.", k)
		}
	}
	switch {
	case len(checks) > 1:
		l.errorf(s.Range("health."+checks[1]), "Conflicting health checks",
			"A health block has one check: http, tcp or cmd; this one has %s.", strings.Join(checks, " and "))
	case len(checks) == 0:
		// A failed or unknown check was already reported or cannot be judged.
		if attrs["http"] == nil && attrs["tcp"] == nil && attrs["cmd"] == nil {
			l.errorf(b.DefRange, "Health block has no check", "Set one of http = \"/path\", tcp = true or cmd = [\"...\"].")
		}
	case (h.HTTP != "" || h.TCP) && h.Port == 0:
		if len(s.Ports) > 0 && s.Ports[0].Target != 0 {
			h.Port = s.Ports[0].Target
		} else if len(s.Ports) == 0 {
			l.errorf(s.Range("health."+checks[0]), "Health check has no port",
				"An %s check probes a container port: add a port block or set port in the health block.", checks[0])
		}
	}
}

func (l *loader) decodeUpdate(s *Service, b *hcl.Block) {
	attrs := l.blockContent(s, b, updateSchema, "update")
	u := &s.Update
	if n, ok := l.integer(attrs["parallelism"], 1, MaxReplicas, "parallelism"); ok {
		u.Parallelism = n
	}
	if v, ok := l.oneOf(attrs["order"], "update order", UpdateOrders...); ok {
		u.Order = v
	}
	if v, ok := l.oneOf(attrs["failure_action"], "failure_action", FailureActions...); ok {
		u.FailureAction = v
	}
	if d, ok := l.duration(attrs["monitor"]); ok {
		u.Monitor = d
	}
	if d, ok := l.duration(attrs["delay"]); ok {
		u.Delay = d
	}
	if b, ok := l.boolean(attrs["reschedule"]); ok {
		u.Reschedule = b
	}
}

func (l *loader) decodeVolume(s *Service, i int, b *hcl.Block) {
	prefix := fmt.Sprintf("volume[%d]", i)
	attrs := l.blockContent(s, b, volumeSchema, prefix)
	l.require(attrs, "source", "target")
	var v Volume
	if src, r, ok := l.str(attrs["source"]); ok {
		switch {
		case strings.HasPrefix(src, "/"):
		case strings.HasPrefix(src, ".") || strings.HasPrefix(src, "~") || strings.Contains(src, "/"):
			l.errorf(r.rng, "Invalid volume source", "A bind mount's source must be an absolute path on the node, such as \"/srv/data\"; %q is relative.", src)
		case !volumeNameRE.MatchString(src):
			l.errorf(r.rng, "Invalid volume source", "%q is neither a volume name (letters, digits, '_', '.', '-') nor an absolute host path.", src)
		}
		v.Source = src
	}
	if dst, r, ok := l.str(attrs["target"]); ok {
		if !strings.HasPrefix(dst, "/") {
			l.errorf(r.rng, "Invalid volume target", "target must be an absolute path in the container, such as \"/var/lib/data\".")
		} else {
			for j, prev := range s.Volumes {
				if filepath.Clean(prev.Target) == filepath.Clean(dst) {
					l.duplicatef(r.rng, s.Range(fmt.Sprintf("volume[%d].target", j)), "Duplicate volume target", "The service %q mounts two volumes at %s.", s.Name, dst)
					break
				}
			}
		}
		v.Target = dst
	}
	if ro, ok := l.boolean(attrs["read_only"]); ok {
		v.ReadOnly = ro
	}
	s.Volumes = append(s.Volumes, v)
}

func (l *loader) decodeBuild(s *Service, b *hcl.Block) {
	attrs := l.blockContent(s, b, buildSchema, "build")
	l.require(attrs, "context")
	bd := &Build{Dockerfile: "Dockerfile", Args: map[string]string{}}
	s.Build = bd
	if v, r, ok := l.str(attrs["context"]); ok {
		if v == "" {
			l.errorf(r.rng, "Invalid build context", "context must be a directory, such as \".\" or \"./app\".")
		}
		if !filepath.IsAbs(v) {
			base := l.dir
			if abs, err := filepath.Abs(l.dir); err == nil {
				base = abs
			}
			v = filepath.Join(base, v)
		}
		bd.Context = filepath.Clean(v)
	}
	if v, r, ok := l.str(attrs["dockerfile"]); ok {
		if v == "" {
			l.errorf(r.rng, "Invalid dockerfile", "dockerfile must not be empty; leave it out for \"Dockerfile\".")
		}
		bd.Dockerfile = v
	}
	if m, _, _, ok := l.stringMap(attrs["args"]); ok {
		bd.Args = m
	}
	if v, _, ok := l.str(attrs["target"]); ok {
		bd.Target = v
	}
}
