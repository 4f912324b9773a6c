package gateway

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/netguard"
)

// openFiles counts this process's file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count descriptors: %v", err)
	}
	return len(ents)
}

// TestFloodOfSlowBodies floods the gateway with clients that promise a
// large body, send one byte and stall, many more than its connection cap:
// the gateway holds at most the cap of them (the descriptors this process
// gains are the clients' own plus at most three per capped connection: the
// gateway's end, its upstream's, the backend's), cuts each off after the
// body timeout, and once the flood ends a normal request goes through.
//
// Not parallel: it counts the whole process's descriptors.
func TestFloodOfSlowBodies(t *testing.T) {
	users := newEchoBackend(t)
	const capConns, flood = 8, 64
	tg := startGateway(t, `
name: shop
services:
  users: {image: users:1}
gateway:
  routes:
    - path: /orders
      methods: [POST]
      integration: {type: service, service: users}
`, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
		c.Limits = netguard.Limits{MaxConns: capConns, BodyTimeout: 300 * time.Millisecond, HeaderTimeout: time.Second}
	})
	addr := strings.TrimPrefix(tg.url, "http://")
	if r := call(t, "POST", tg.url+"/orders", "{}"); r.status != 200 {
		t.Fatalf("before the flood: %d %s", r.status, r.body)
	}
	base := openFiles(t)

	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 1048576\r\n\r\nx"); err != nil {
			t.Fatal(err)
		}
	}
	// Sample while the flood stands: every gained descriptor beyond the
	// clients' own is one the gateway or its backend holds.
	peak := 0
	for range 20 {
		peak = max(peak, openFiles(t)-base-flood)
		time.Sleep(20 * time.Millisecond)
	}
	if limit := 3*capConns + 4; peak > limit {
		t.Errorf("during a flood of %d slow bodies the gateway side held %d descriptors, want at most %d (cap %d)", flood, peak, limit, capConns)
	}

	// The stalled clients are cut off (408 and a close), so that the
	// cap frees: read each to its end.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("slow client %d was not cut off: %v", i, err)
		}
		if !strings.HasPrefix(string(b), "HTTP/1.1 408 ") {
			t.Errorf("slow client %d: %q, want 408", i, b)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if r := call(t, "POST", tg.url+"/orders", "{}"); r.status != 200 {
		t.Errorf("after the flood: %d %s", r.status, r.body)
	}
}
