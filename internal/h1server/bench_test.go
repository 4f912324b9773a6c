package h1server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// BenchmarkServer: keep-alive GETs over loopback, 8 connections, against
// this server and net/http's with the same handler (the peer for the
// ratio). On a busy machine read B/op and allocs/op (the server's and
// the benchmark's client's, which are the same for both) rather than
// ns/op.
//
//	go test -run XXX -bench Server -benchmem ./internal/h1server/
func BenchmarkServer(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from the backend\n")
	})
	b.Run("h1server", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		s := &Server{Handler: h}
		go s.Serve(ln)
		defer s.Close()
		hammer(b, ln.Addr().String())
	})
	b.Run("net-http", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		s := &http.Server{Handler: h}
		go s.Serve(ln)
		defer s.Close()
		hammer(b, ln.Addr().String())
	})
}

// hammer sends b.N requests over 8 keep-alive connections, one at a time
// on each, reading each answer with a minimal client.
func hammer(b *testing.B, addr string) {
	const conns = 8
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	var wg sync.WaitGroup
	work := make(chan struct{}, b.N)
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	b.ResetTimer()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for range work {
				if _, err := c.Write(req); err != nil {
					b.Error(err)
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}
