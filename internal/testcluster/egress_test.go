//go:build linux

package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread that has joined the network namespace at
// path: sockets fn creates (net.Listen, net.Dial) belong to that namespace
// and keep working from any goroutine. The thread is not handed back to the
// runtime (it ends with its goroutine), so nothing else runs in the
// namespace by mistake.
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		f, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// dialFrom connects to addr from the network namespace at path and returns
// "open", "refused", "unreachable", "timeout" or the error.
func dialFrom(path, addr string) string {
	var state string
	err := inNetns(path, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		var ne net.Error
		switch {
		case err == nil:
			c.Close()
			state = "open"
		case errors.Is(err, syscall.ECONNREFUSED):
			state = "refused"
		case errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH):
			state = "unreachable"
		case errors.As(err, &ne) && ne.Timeout():
			state = "timeout"
		default:
			state = err.Error()
		}
		return nil
	})
	if err != nil {
		return err.Error()
	}
	return state
}

// target is a TCP listener that answers HTTP 200 and counts connections.
type target struct {
	addr     string
	accepted atomic.Int32
}

func serve(t *testing.T, l net.Listener) *target {
	tg := &target{addr: l.Addr().String()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached\n") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				tg.accepted.Add(1)
			}
		},
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return tg
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// dropCount returns the packet counter of chain's DROP rule whose
// iptables -L -v line matches the regular expression match.
func dropCount(t *testing.T, chain, match string) int64 {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-L", chain, "-v", "-x", "-n").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -L %s: %v\n%s", chain, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 2 && f[2] == "DROP" && regexp.MustCompile(match).MatchString(l) {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			return n
		}
	}
	t.Fatalf("no DROP rule matching %q in chain %s:\n%s", match, chain, out)
	return 0
}

// TestEgressDropped checks issue 3's "outbound traffic dropped except to the
// other nodes and the host on the bridge", with targets the test makes
// itself (nothing is sent anywhere else): an address of the host's, on a
// veth the test adds (reached through the host's INPUT chain), and one in a
// network namespace behind that veth, routed by the host (its FORWARD
// chain), both outside the
// bridge's subnet. node1, and a container on node1, cannot reach either,
// even with explicit routes to them through the host's bridge address in
// node1's namespace, and the cluster's own DROP rules are what stops them;
// node1 still reaches node2 and the host's bridge address. Everything the
// test adds is removed; node1's routes are checked to be as before.
func TestEgressDropped(t *testing.T) {
	c := Require(t)
	n1, n2 := c.Node(t, "node1"), c.Node(t, "node2")
	const (
		hostTarget = "10.231.250.1" // the host's, on the test's veth
		nsTarget   = "10.231.251.2" // in a namespace behind the host; the host's side is .1/30
	)
	out, err := exec.Command("ip", "-o", "addr").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "10.231.250.") || strings.Contains(string(out), "10.231.251.") {
		t.Fatalf("10.231.250.0/24 or 10.231.251.0/24 is in use on this machine (a test left it?):\n%s", out)
	}
	node1NS := "/run/netns/" + n1.Netns
	routes := func() string {
		out, err := exec.Command("ip", "-n", n1.Netns, "route", "show", "table", "all").CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s route: %v\n%s", n1.Netns, err, out)
		}
		// The routes of Docker's bridges are left out: other tests create
		// and remove project networks (a bridge br-..., with its route) on
		// node1 while this one runs; what this test adds goes through eth0.
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, " dev docker0") || strings.Contains(l, " dev br-") {
				continue
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	before := routes()
	t.Cleanup(func() {
		if after := routes(); after != before {
			t.Errorf("node1's routes are not as before the test:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	b := make([]byte, 2)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	veth, ns := "bth-egv"+sfx, "berth-egress-"+sfx
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ipCmd(t, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	ipCmd(t, "addr", "add", "10.231.251.1/30", "dev", veth)
	ipCmd(t, "addr", "add", hostTarget+"/32", "dev", veth) // an address of the host's own
	ipCmd(t, "link", "set", veth, "up")
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	ipCmd(t, "-n", ns, "addr", "add", nsTarget+"/30", "dev", "eth0")
	ipCmd(t, "-n", ns, "link", "set", "eth0", "up")
	ipCmd(t, "-n", ns, "route", "add", "default", "via", "10.231.251.1") // replies could go back

	p := port()
	listen := func(addr string) *target {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return serve(t, l)
	}
	onHost := listen(net.JoinHostPort(hostTarget, fmt.Sprint(p)))
	onBridge := listen(net.JoinHostPort(c.BridgeIP, fmt.Sprint(p)))
	var nsl net.Listener
	if err := inNetns("/run/netns/"+ns, func() (err error) {
		nsl, err = net.Listen("tcp", net.JoinHostPort(nsTarget, fmt.Sprint(p)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	inNS := serve(t, nsl)
	blocked := []*target{onHost, inNS}

	// The targets answer when reached, from the host itself.
	for _, tg := range []*target{onHost, inNS, onBridge} {
		if s, body, err := get("http://"+tg.addr+"/", 3*time.Second); err != nil || s != 200 || body != "reached\n" {
			t.Fatalf("GET http://%s/ from the host: %d %q %v", tg.addr, s, body, err)
		}
	}
	for _, tg := range blocked {
		tg.accepted.Store(0)
	}

	// What node1 may reach.
	if s := dialFrom(node1NS, net.JoinHostPort(n2.Addr, "22")); s != "open" {
		t.Errorf("node1 -> node2:22: %s, want open", s)
	}
	if s := dialFrom(node1NS, onBridge.addr); s != "open" {
		t.Errorf("node1 -> the host's bridge address %s: %s, want open", onBridge.addr, s)
	}
	// No route out of the bridge's subnet.
	for _, tg := range blocked {
		if s := dialFrom(node1NS, tg.addr); s == "open" {
			t.Errorf("node1 -> %s (no route): open", tg.addr)
		}
	}
	// With routes through the host, the host's firewall drops it.
	for _, tg := range []string{hostTarget, nsTarget} {
		ipCmd(t, "-n", n1.Netns, "route", "add", tg+"/32", "via", c.BridgeIP)
		t.Cleanup(func() { exec.Command("ip", "-n", n1.Netns, "route", "del", tg+"/32").Run() })
	}
	in0 := dropCount(t, "BERTH-TC-IN", `berth0\s+\*`)
	fwd0 := dropCount(t, "BERTH-TC", `berth0\s+\*`)
	for _, tg := range blocked {
		if s := dialFrom(node1NS, tg.addr); s != "timeout" {
			t.Errorf("node1 -> %s with a route through the host: %s, want timeout (dropped)", tg.addr, s)
		}
	}
	if in1 := dropCount(t, "BERTH-TC-IN", `berth0\s+\*`); in1 <= in0 {
		t.Errorf("the host's BERTH-TC-IN DROP rule did not count node1's packets to %s (%d -> %d)", hostTarget, in0, in1)
	}
	if fwd1 := dropCount(t, "BERTH-TC", `berth0\s+\*`); fwd1 <= fwd0 {
		t.Errorf("the host's BERTH-TC DROP rule did not count node1's packets to %s (%d -> %d)", nsTarget, fwd0, fwd1)
	}

	// A container on node1 (its engine's bridge, masqueraded out of node1),
	// with the routes still in place.
	proj := project(t, c)
	cli := c.Docker(t, "node1")
	check := func(url string) int64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cr, err := cli.ContainerCreate(ctx, &container.Config{Image: ImageV1, Cmd: []string{"check", url}, Labels: map[string]string{ProjectLabel: proj}}, nil, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		waitc, errc := cli.ContainerWait(ctx, cr.ID, container.WaitConditionNextExit)
		if err := cli.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case w := <-waitc:
			return w.StatusCode
		case err := <-errc:
			t.Fatalf("wait for the container checking %s: %v", url, err)
		}
		return -1
	}
	if code := check("http://" + onBridge.addr + "/"); code != 0 {
		t.Errorf("a container on node1 -> the host's bridge address: exit %d, want 0", code)
	}
	for _, tg := range blocked {
		if code := check("http://" + tg.addr + "/"); code == 0 {
			t.Errorf("a container on node1 reached %s", tg.addr)
		}
	}
	for _, tg := range blocked {
		if n := tg.accepted.Load(); n != 0 {
			t.Errorf("%s accepted %d connections from node1", tg.addr, n)
		}
	}
}
