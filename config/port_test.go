package config

import "testing"

func TestHostPortOverlaps(t *testing.T) {
	tcp := func(ip string, port int) HostPort { return HostPort{Protocol: "tcp", IP: ip, Port: port} }
	cases := []struct {
		a, b HostPort
		want bool
	}{
		{tcp("", 80), tcp("127.0.0.1", 80), true},
		{tcp("0.0.0.0", 80), tcp("10.0.0.1", 80), true},
		{tcp("::", 80), tcp("10.0.0.1", 80), true},
		{tcp("127.0.0.1", 80), tcp("127.0.0.1", 80), true},
		{tcp("127.0.0.1", 80), tcp("10.0.0.1", 80), false},
		{tcp("", 80), tcp("", 81), false},
		{tcp("", 80), HostPort{Protocol: "udp", Port: 80}, false},
	}
	for _, c := range cases {
		if got := c.a.Overlaps(c.b); got != c.want {
			t.Errorf("%+v.Overlaps(%+v) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := c.b.Overlaps(c.a); got != c.want {
			t.Errorf("Overlaps is not symmetric for %+v, %+v", c.a, c.b)
		}
	}
}

func TestPortStringRoundTrip(t *testing.T) {
	for _, s := range []string{"8080:80/tcp", "127.0.0.1:53:53/udp"} {
		p, ok := ParsePort(s)
		if !ok || p.String() != s {
			t.Errorf("ParsePort(%q) = %+v, %v; String() = %q", s, p, ok, p.String())
		}
	}
	for _, s := range []string{"8080:80", "x:80/tcp", "1:2:3:4/tcp"} {
		if _, ok := ParsePort(s); ok {
			t.Errorf("ParsePort(%q) accepted", s)
		}
	}
	h := Port{Target: 80, Published: 8080, Protocol: "tcp", HostIP: "127.0.0.1"}.Host()
	if h.Key() != "tcp/8080" || h.String() != "8080/tcp" {
		t.Errorf("Key, String = %q, %q", h.Key(), h.String())
	}
}
