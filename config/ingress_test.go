package config

import "testing"

func TestIngressDecode(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": `
project "p" {
  ingress {
    image = "berth-test/caddy:2.11.9"
    nodes = node.labels.edge == "yes"
    tls   = "internal"
  }
}
node "n1" {
  address = "10.0.0.1"
  labels  = { edge = "yes" }
}
service "web" {
  image    = "nginx"
  replicas = 6
  port {
    target    = 80
    published = 18080
    mode      = "ingress"
    host      = "web.example.com"
    path      = "/app"
  }
}
service "api" {
  image    = "nginx"
  port {
    target    = 80
    published = 18080
    mode      = "ingress"
    path      = "/api"
  }
  port {
    target    = 53
    published = 5353
    protocol  = "udp"
  }
}
`})
	cfg, diags := Load(dir, Inputs{})
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", renderAll(diags))
	}
	in := cfg.IngressOf()
	if in.Image != "berth-test/caddy:2.11.9" || in.TLS != "internal" || in.Nodes == nil {
		t.Errorf("ingress: %+v", in)
	}
	if !cfg.HasIngress() {
		t.Error("HasIngress = false")
	}
	p := cfg.Service("web").Ports[0]
	if !p.Ingress() || p.Published != 18080 || p.HostName != "web.example.com" || p.Path != "/app" {
		t.Errorf("web port: %+v", p)
	}
	if q := cfg.Service("api").Ports[1]; q.Ingress() || q.Mode != "" {
		t.Errorf("udp port: %+v", q)
	}
	// An ingress port's spec string leaves routes and backend out.
	p.Backend = 31000
	if s := p.String(); s != "ingress:80/tcp" {
		t.Errorf("String = %q", s)
	}
	if back, ok := ParsePort(p.String()); !ok || !back.Ingress() || back.Target != 80 {
		t.Errorf("ParsePort = %+v, %v", back, ok)
	}
	if h := p.Host(); h.Port != 31000 {
		t.Errorf("Host = %+v, want the backend port", h)
	}
}

func TestIngressDefaults(t *testing.T) {
	cfg := &Config{}
	if in := cfg.IngressOf(); in.Image != DefaultIngressImage || in.TLS != "off" || in.Nodes != nil {
		t.Errorf("defaults: %+v", in)
	}
}
