package databases

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortOutsideEphemeralRange: the ports databases keep are picked
// where no outgoing connection or port-0 listener can take them before the
// server binds, and are free when picked.
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	t.Parallel()
	lo, hi := ephemeralRange()
	if lo < 1024 || hi > 65535 || lo > hi {
		t.Fatalf("ephemeral range %d-%d", lo, hi)
	}
	for range 20 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if p >= lo && p <= hi {
			t.Fatalf("port %d is in the ephemeral range %d-%d", p, lo, hi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}
