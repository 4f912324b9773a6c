package upstream

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkRoundTrip compares a bodyless GET over loopback through the
// Client and through http.Transport alone, allocations included.
func BenchmarkRoundTrip(b *testing.B) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the server\n")
	}))
	b.Cleanup(s.Close)
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 512}
	b.Cleanup(tr.CloseIdleConnections)
	d := &net.Dialer{Timeout: 5 * time.Second}
	c := New(d.DialContext, tr)
	b.Cleanup(c.Close)
	for _, bb := range []struct {
		name string
		rt   http.RoundTripper
	}{{"client", c}, {"transport", tr}} {
		b.Run(bb.name, func(b *testing.B) {
			r, err := http.NewRequest("GET", s.URL+"/", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := bb.rt.RoundTrip(r)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
