package engine

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/planner"
)

// procNetFiles are the kernel's socket tables read for host ports, in the
// order the remote command prints them.
var procNetFiles = []string{"tcp", "tcp6", "udp", "udp6"}

// hostPortsCommand prints every socket table in one exec session. It is a
// plain command line that any login shell runs (sh, bash, zsh, fish, csh):
// the tables are told apart by their headers, and a table the kernel lacks
// (IPv6 disabled) is simply missing, with cat exiting 1.
const hostPortsCommand = `cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6`

// Socket states in /proc/net/{tcp,udp}*: st column.
const (
	tcpListen = 0x0A
	// An unconnected UDP socket (one that receives from anyone) shows as
	// TCP_CLOSE.
	udpUnconnected = 0x07
)

// parseHostPortsOutput parses the output of hostPortsCommand: one or more
// tables, each starting with its "sl local_address ..." header; UDP tables
// end their header with "drops". Without a TCP table the read failed.
func parseHostPortsOutput(out []byte) ([]planner.HostPort, error) {
	sections := map[string][]byte{}
	var cur string
	for _, line := range bytes.SplitAfter(out, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) > 0 && string(f[0]) == "sl" {
			cur = "tcp"
			if bytes.Contains(line, []byte("drops")) {
				cur = "udp"
			}
		}
		if cur != "" {
			sections[cur] = append(sections[cur], line...)
		}
	}
	if len(sections["tcp"]) == 0 {
		return nil, errors.New("/proc/net/tcp could not be read on the node")
	}
	return parseProcNetTables(sections)
}

// readLocalHostPorts reads this machine's socket tables.
func readLocalHostPorts() ([]planner.HostPort, error) {
	sections := map[string][]byte{}
	for _, f := range procNetFiles {
		b, err := os.ReadFile("/proc/net/" + f)
		if err != nil {
			if f != "tcp" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		sections[f] = b
	}
	return parseProcNetTables(sections)
}

func parseProcNetTables(sections map[string][]byte) ([]planner.HostPort, error) {
	seen := map[planner.HostPort]bool{}
	var out []planner.HostPort
	for _, f := range procNetFiles {
		data, ok := sections[f]
		if !ok {
			continue
		}
		ports, err := parseProcNet(f, data)
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sortHostPorts(out)
	return out, nil
}

func sortHostPorts(ps []planner.HostPort) { slices.SortFunc(ps, planner.HostPort.Compare) }

// parseProcNet parses one /proc/net table (name is tcp, tcp6, udp or udp6)
// and returns its listening TCP sockets or unconnected UDP sockets.
//
// Addresses are printed as 32-bit words in the node's byte order; berth
// assumes a little-endian node (amd64, arm64), as Docker hosts are.
func parseProcNet(name string, data []byte) ([]planner.HostPort, error) {
	proto := strings.TrimSuffix(name, "6")
	want := tcpListen
	if proto == "udp" {
		want = udpUnconnected
	}
	var out []planner.HostPort
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "sl" {
			continue // a table's header
		}
		if len(fields) < 4 {
			return nil, fmt.Errorf("/proc/net/%s line %d: too few fields", name, n)
		}
		st, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s line %d: state %q: %v", name, n, fields[3], err)
		}
		if int(st) != want {
			continue
		}
		ip, port, err := parseProcAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s line %d: %v", name, n, err)
		}
		out = append(out, planner.HostPort{Protocol: proto, IP: ip.String(), Port: port})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/net/%s: %v", name, err)
	}
	return out, nil
}

// parseProcAddr parses "0100007F:1F90" (IPv4) or a 32-hex-digit IPv6
// address and a port.
func parseProcAddr(s string) (netip.Addr, int, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("address %q: no port", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q: port: %v", s, err)
	}
	b, err := hex.DecodeString(hexIP)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, 0, fmt.Errorf("address %q: bad IP", s)
	}
	// Each 32-bit word is in little-endian order.
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	ip, _ := netip.AddrFromSlice(b)
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	return ip, int(port), nil
}
