package netguard

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBudget checks the shares of the open-file limit: the reserve, and
// caps that together (two descriptors a proxied connection) fit in what
// is left.
func TestBudget(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1024, 4096, 20000, 1 << 20} {
		b := BudgetFor(limit)
		if b.Reserve < minReserve || b.Reserve < limit/4 {
			t.Errorf("limit %d: reserve %d", limit, b.Reserve)
		}
		if used := 2*(b.Gateway+b.Ingress+b.Mesh) + b.Console + b.Reserve; limit > 2*minReserve && used > limit {
			t.Errorf("limit %d: the caps and the reserve need %d descriptors", limit, used)
		}
		if b.Gateway < 1 || b.Ingress < 1 || b.Mesh < 1 {
			t.Errorf("limit %d: a cap below 1: %+v", limit, b)
		}
	}
	if got := BudgetFor(20000); got.Gateway != 2457 || got.Reserve != 5000 {
		t.Errorf("limit 20000: %+v", got)
	}
	l := Limits{}.WithDefaults(Gateway)
	if l.MaxConns != BudgetFor(FileLimit()).Gateway || l.BodyTimeout != DefaultBodyTimeout || l.HeaderTimeout != DefaultHeaderTimeout {
		t.Errorf("defaults: %+v", l)
	}
}

// TestRaiseFileLimit checks that the soft limit ends at the hard one.
func TestRaiseFileLimit(t *testing.T) {
	got, err := RaiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if got != FileLimit() || got < 1024 {
		t.Errorf("limit after raising: %d (now %d)", got, FileLimit())
	}
}

// TestLimiterSharedCap opens more connections than the cap over two
// listeners sharing one Limiter: the server side never holds more than
// the cap, and a closed connection lets a waiting one in.
func TestLimiterSharedCap(t *testing.T) {
	t.Parallel()
	const capConns = 3
	lim := NewLimiter(capConns)
	var lns []net.Listener
	var mu sync.Mutex
	var accepted []net.Conn
	for range 2 {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := lim.Listener(raw)
		lns = append(lns, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				accepted = append(accepted, c)
				mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
	})
	var clients []net.Conn
	for i := range 8 {
		c, err := net.Dial("tcp", lns[i%2].Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	n := func() int { mu.Lock(); defer mu.Unlock(); return len(accepted) }
	waitFor(t, "the cap reached", func() bool { return n() == capConns })
	// The others wait in the backlog, however long one looks.
	for range 10 {
		if got := n(); got > capConns || lim.Open() > capConns {
			t.Fatalf("accepted %d, open %d, cap %d", got, lim.Open(), capConns)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	accepted[0].Close()
	mu.Unlock()
	waitFor(t, "a waiting connection accepted", func() bool { return n() == capConns+1 })
	if lim.Open() != capConns {
		t.Errorf("open %d after one closed and one accepted, want %d", lim.Open(), capConns)
	}
	// Closing a listener ends its Accept even while the cap is full.
	lns[0].Close()
	if _, err := lns[0].Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed, full listener: %v", err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBodyTimeout serves a handler that reads the body: a client that
// stalls mid-body fails the read with ErrBodyTimeout (and BodyTimedOut
// says so), a slow but steady one is read whole, and a body the handler
// leaves unread does not hold the connection.
func TestBodyTimeout(t *testing.T) {
	t.Parallel()
	type result struct {
		body     string
		err      error
		timedOut bool
	}
	results := make(chan result, 4)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		b, err := io.ReadAll(r.Body)
		results <- result{string(b), err, BodyTimedOut(r.Context())}
	})}
	Server(srv, Limits{BodyTimeout: 200 * time.Millisecond}.WithDefaults(Gateway))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	send := func(path string, chunks ...string) net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		n := 0
		for _, ch := range chunks {
			n += len(ch)
		}
		io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(n+1)+"\r\n\r\n")
		for _, ch := range chunks {
			io.WriteString(c, ch)
			time.Sleep(50 * time.Millisecond) // a quarter of the body timeout
		}
		return c
	}

	// Steady: 8 chunks, 400 ms in all, longer than the timeout, then the
	// last byte.
	c := send("/read", "a", "b", "c", "d", "e", "f", "g", "h")
	io.WriteString(c, "i")
	if r := <-results; r.err != nil || r.body != "abcdefghi" {
		t.Errorf("steady body: %q, %v", r.body, r.err)
	}

	// Stalled: one byte, then nothing.
	send("/read", "x")
	r := <-results
	if !errors.Is(r.err, ErrBodyTimeout) || !r.timedOut {
		t.Errorf("stalled body: %q, %v, timed out %v; want ErrBodyTimeout", r.body, r.err, r.timedOut)
	}

	// Unread and stalled: the answer comes, then the connection ends.
	c = send("/ignore", "x")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 204") {
		t.Errorf("unread stalled body: %q, %v; want a 204 and the connection closed", b, err)
	}
}
