package h1server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// start serves s on a loopback port and returns its address.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

func TestHandsHTTP2AndCONNECTToFallback(t *testing.T) {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	fb := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "fallback %s %s", r.Proto, r.Method)
	})}
	s := &Server{Fallback: fb, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "loop %s %s", r.Proto, r.Method)
	})}
	addr := start(t, s)

	var cp http.Protocols
	cp.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &cp}}
	if got := get(t, h2, "http://"+addr+"/"); got != "fallback HTTP/2.0 GET" {
		t.Fatalf("HTTP/2 with prior knowledge: %q", got)
	}
	if got := get(t, http.DefaultClient, "http://"+addr+"/"); got != "loop HTTP/1.1 GET" {
		t.Fatalf("HTTP/1.1: %q", got)
	}
	// CONNECT after a request on the same connection: handed over at
	// the request's boundary, with nothing lost.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\nCONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"loop HTTP/1.1 GET", "fallback HTTP/1.1 CONNECT"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestHijack(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		// Bytes the client sent with the request come through the
		// buffered reader.
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	})}
	addr := start(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	line, _ := br.ReadString('\n')
	if line != "echo hello\n" {
		t.Fatalf("got %q", line)
	}
}

func TestAcceptHookRefuses(t *testing.T) {
	var seen atomic.Int32
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		Accept: func(c net.Conn) bool {
			return seen.Add(1) > 1 // refuse the first connection only
		},
	}
	addr := start(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("a refused connection got %q", b)
	}
	c.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	if got := get(t, &http.Client{Transport: tr}, "http://"+addr+"/"); got != "ok" {
		t.Fatalf("got %q", got)
	}
	if seen.Load() != 2 {
		t.Fatalf("hook saw %d connections, want 2", seen.Load())
	}
}

// TestTimeouts: an idle connection, a request whose headers never end and
// a body that does not come are each closed by the server. The
// assertions are on what happens, not on when.
func TestTimeouts(t *testing.T) {
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
				return
			}
			io.WriteString(w, "ok")
		}),
		IdleTimeout:       50 * time.Millisecond,
		ReadHeaderTimeout: 50 * time.Millisecond,
		MinBodyRate:       1 << 20,
	}
	addr := start(t, s)
	for _, tc := range []struct{ name, raw, want string }{
		{"idle", "", ""},
		{"slow headers", "GET / HTTP/1.1\r\nHost: a\r\n", ""},
		{"slow body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc", "i/o timeout"},
	} {
		name, raw := tc.name, tc.raw
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, raw)
			// The server closes the connection: the read ends.
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil && !isReset(err) {
				t.Fatalf("the server did not close: %v", err)
			}
			if tc.want == "" && len(b) != 0 || !strings.Contains(string(b), tc.want) {
				t.Fatalf("got %q, want %q", b, tc.want)
			}
		})
	}
}

func TestShutdownWaitsForRequests(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	})}
	addr := start(t, s)
	// One idle keep-alive connection and one busy.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	if got := get(t, cl, "http://"+addr+"/"); got != "done" {
		t.Fatal(got)
	}
	res := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- string(b)
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned with a request in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if got := <-res; got != "done" {
		t.Fatalf("the request in flight got %q", got)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("the listener still accepts")
	}
}

// TestIdleConnectionMemory opens idle keep-alive connections (each has
// served one request) and measures the heap and stacks they hold. The
// goal is at most 16 KiB each. H1SERVER_IDLE_CONNS sets how many (the
// figure in bench/README.md is with 9000; the process needs two file
// descriptors per connection).
func TestIdleConnectionMemory(t *testing.T) {
	n := 1000
	if v := os.Getenv("H1SERVER_IDLE_CONNS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), IdleTimeout: time.Hour}
	addr := start(t, s)
	conns := make([]net.Conn, 0, n)
	// The clients' side is measured too; it is subtracted below with a
	// run of the same clients against a listener that only accepts.
	measure := func(open func() net.Conn) uint64 {
		before := inUse()
		for i := 0; i < n; i++ {
			conns = append(conns, open())
		}
		after := inUse()
		for _, c := range conns {
			c.Close()
		}
		conns = conns[:0]
		return after - before
	}
	buf := make([]byte, 512)
	served := measure(func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		return c
	})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := raw.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	bare := measure(func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
	// net/http's server on the same connections, for comparison.
	hs := &http.Server{Handler: s.Handler, IdleTimeout: time.Hour}
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(hln)
	defer hs.Close()
	netHTTP := measure(func() net.Conn {
		c, err := net.Dial("tcp", hln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		return c
	})
	per := (float64(served) - float64(bare)) / float64(n)
	t.Logf("%d idle connections: %.0f bytes each (heap in use and stacks; server %d, bare sockets %d in all); net/http's server: %.0f bytes each",
		n, per, served, bare, (float64(netHTTP)-float64(bare))/float64(n))
	if per > 16<<10 && !raceEnabled {
		t.Fatalf("%.0f bytes per idle connection, want at most 16 KiB", per)
	}
}

// inUse is the heap and stack memory in use after a collection.
func inUse() uint64 {
	time.Sleep(100 * time.Millisecond) // let the connections' goroutines park
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func TestRequestsCarryRemoteAddrAndContext(t *testing.T) {
	type key struct{}
	s := &Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, key{}, "conn-value")
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%v %v", r.Context().Value(key{}), strings.HasPrefix(r.RemoteAddr, "127.0.0.1:"))
		}),
	}
	addr := start(t, s)
	if got := get(t, http.DefaultClient, "http://"+addr+"/"); got != "conn-value true" {
		t.Fatalf("got %q", got)
	}
}

// TestHandlerPanic: a handler's panic closes its connection; the server
// goes on serving others.
func TestHandlerPanic(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("handler bug")
		}
		io.WriteString(w, "ok")
	})}
	addr := start(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if b, err := io.ReadAll(c); err != nil && !isReset(err) || len(b) != 0 {
		t.Fatalf("after a panic: %q, %v", b, err)
	}
	if got := get(t, http.DefaultClient, "http://"+addr+"/"); got != "ok" {
		t.Fatalf("after a panic the server answers %q", got)
	}
}
