package engine

import (
	"os"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/planner"
)

const procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 513 1 00000000fa2f91bc 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 514 1 00000000fa2f91bc 100 0 0 10 0
   2: 020200C0:B6C6 507100CB:01BB 06 00000000:00000000 03:00000C46 00000000     0        0 0 3 000000007373c026
   3: 0100007F:1F90 0100007F:D0E2 01 00000000:00000000 00:00000000 00000000     0        0 515 1 0000000000000000 20 4 30 10 -1
`

const procTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
`

const procUDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 16 2 0 0
  101: 0100007F:A000 0100007F:0035 01 00000000:00000000 00:00000000 00000000   101        0 17 2 0 0
`

const procUDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  200: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 18 2 0 0
`

func TestParseHostPortsOutput(t *testing.T) {
	out := procTCP + procTCP6 + procUDP + procUDP6
	got, err := parseHostPortsOutput([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []planner.HostPort{
		{Protocol: "tcp", IP: "::1", Port: 22},
		{Protocol: "tcp", IP: "::", Port: 80},
		{Protocol: "tcp", IP: "0.0.0.0", Port: 2024},
		{Protocol: "tcp", IP: "127.0.0.1", Port: 8080},
		{Protocol: "tcp", IP: "127.0.0.1", Port: 8081}, // IPv4-mapped, unmapped
		{Protocol: "udp", IP: "127.0.0.53", Port: 53},
		{Protocol: "udp", IP: "::", Port: 5353},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestParseHostPortsOutputNeedsTCP(t *testing.T) {
	// The command's output when /proc/net/tcp could not be read must not
	// read as "no ports".
	if _, err := parseHostPortsOutput([]byte(procUDP + procUDP6)); err == nil {
		t.Fatal("no error without a tcp table")
	}
	if _, err := parseHostPortsOutput(nil); err == nil {
		t.Fatal("no error for no output")
	}
}

// With IPv6 disabled the v6 tables are missing: still parsed.
func TestParseHostPortsOutputNoIPv6(t *testing.T) {
	got, err := parseHostPortsOutput([]byte(procTCP + procUDP))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("got %v", got)
	}
}

func TestParseProcNetErrors(t *testing.T) {
	for _, bad := range []string{
		"  sl local rem st\n   0: 0100007F 00000000:0000 0A\n",
		"  sl local rem st\n   0: 0100007F:XYZ 00000000:0000 0A\n",
		"  sl local rem st\n   0: 01007F:0016 00000000:0000 0A\n",
		"  sl local rem st\n   0: 0100007F:0016 00000000:0000 ZZ\n",
		"  sl local rem st\n   0: 0100007F:0016\n",
	} {
		if _, err := parseProcNet("tcp", []byte(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestReadLocalHostPorts(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp on this machine")
	}
	if _, err := readLocalHostPorts(); err != nil {
		t.Fatal(err)
	}
}
