package mesh

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/procgroup"
)

// curlAs runs curl through proxy in a cgroup named as a replica of
// workload (as the engine names them) and returns the status it got.
func curlAs(t *testing.T, tr *procgroup.Tree, workload, proxy, target string) string {
	t.Helper()
	g, err := tr.New(workload + "-0")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Kill()
	cmd := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "", "-x", proxy, target)
	cmd.SysProcAttr = sysProcAttrForTest()
	g.Prepare(cmd.SysProcAttr)
	out := &strings.Builder{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Started(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return out.String()
}

// TestProxyRefusesAnotherWorkload calls the proxy listener of orders from
// a replica of billing (a process in billing's cgroup, which read orders'
// HTTP_PROXY from /proc): refused with 403. From a replica of orders, and
// from a process in no workload's cgroup (this test, as nubo's own
// components), the call goes through.
func TestProxyRefusesAnotherWorkload(t *testing.T) {
	tr := procgroup.Open(nil)
	t.Cleanup(func() { tr.Close() })
	if !tr.Enabled() {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no writable cgroup hierarchy: %s", tr.Reason())
		}
		t.Skipf("no writable cgroup hierarchy: %s", tr.Reason())
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (scripts/install-test-deps)")
	}
	eps := newFakeEndpoints()
	eps.set("inventory", backends(t, 1, whoami)...)
	cfg := baseConfig(t, "inventory")
	cfg.Workloads = tr.Members
	m := startMesh(t, cfg, eps)
	proxy, err := m.ProxyURL("orders")
	if err != nil {
		t.Fatal(err)
	}
	if got := curlAs(t, tr, "billing", proxy, "http://inventory/"); got != "403" {
		t.Errorf("billing through orders' proxy: %q, want 403", got)
	}
	if got := curlAs(t, tr, "orders", proxy, "http://inventory/"); got != "200" {
		t.Errorf("orders through its own proxy: %q, want 200", got)
	}
	if code, _ := get(t, proxyClient(t, m, "orders"), "http://inventory/"); code != http.StatusOK {
		t.Errorf("a process in no workload's cgroup: %d, want 200", code)
	}
}

// BenchmarkPeerLookup is the cost the check adds to each new connection to
// a proxy listener: one sock_diag lookup of the client's socket, then the
// descriptors of the workloads' processes (here the client, curl, among
// ten). The peer, "dial", is what a new loopback connection costs
// without the check (dial, accept, close).
func BenchmarkPeerLookup(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // until the client closes: curl waits for an answer
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	b.Run("dial", func(b *testing.B) {
		for b.Loop() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("check", func(b *testing.B) {
		cmd := exec.Command("curl", "-s", "--max-time", "60", "http://"+ln.Addr().String()+"/")
		if err := cmd.Start(); err != nil {
			b.Skip("curl:", err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		// curl's connection, from the server's side: its port in
		// /proc/net/tcp, once it is there.
		var remote *net.TCPAddr
		local := ln.Addr().(*net.TCPAddr)
		listener := fmt.Sprintf("0100007F:%04X", local.Port)
		for deadline := time.Now().Add(10 * time.Second); remote == nil; {
			if time.Now().After(deadline) {
				b.Fatal("curl's connection is not in /proc/net/tcp")
			}
			data, _ := os.ReadFile("/proc/net/tcp")
			for line := range strings.SplitSeq(string(data), "\n") {
				fs := strings.Fields(line)
				if len(fs) > 9 && fs[9] != "0" && fs[2] == listener {
					remote = parseProcAddr(fs[1])
				}
			}
		}
		workloads := map[int]string{cmd.Process.Pid: "curl"}
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			if pid, err := strconv.Atoi(p.Name()); err == nil && len(workloads) < 10 {
				workloads[pid] = "other"
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			if pid, w, err := peerWorkload(local, remote, workloads); err != nil || pid != cmd.Process.Pid || w != "curl" {
				b.Fatal(pid, w, err)
			}
		}
	})
}

func sysProcAttrForTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// parseProcAddr reads an IPv4 address of /proc/net/tcp.
func parseProcAddr(s string) *net.TCPAddr {
	ipHex, portHex, _ := strings.Cut(s, ":")
	v, _ := strconv.ParseUint(ipHex, 16, 32)
	port, _ := strconv.ParseUint(portHex, 16, 16)
	ip := make(net.IP, 4)
	binary.LittleEndian.PutUint32(ip, uint32(v))
	return &net.TCPAddr{IP: ip, Port: int(port)}
}
