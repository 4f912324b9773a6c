package mesh

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/spec"
)

// benchConfig is the benchmark's mesh: metrics on and one allow policy,
// as in bench/mesh.
func benchConfig(b *testing.B) Config {
	cfg := Config{Namespace: "shop", Services: map[string]ServiceConfig{"users": {Port: 80}}, EndpointRefresh: time.Hour}
	cfg.Metrics = prometheus.NewRegistry()
	cfg.Mesh.Policies = []*spec.Policy{{Name: "orders-reads", To: "users", Action: "allow",
		From: spec.PolicySource{Principals: []string{"orders"}},
		When: []*spec.PolicyCondition{{Key: "request.method", Values: []string{"GET"}}}}}
	return cfg
}

// staticReplica is an in-memory replica: it answers every request with
// "ok", so that a benchmark measures the proxy and not the network.
type staticReplica struct{}

func (staticReplica) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Type": {"text/plain"}},
		Body:          io.NopCloser(strings.NewReader("ok")),
		ContentLength: 2,
		Request:       r,
	}, nil
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// BenchmarkProxyHotPath runs the proxy's handler for one request, from
// host resolution to the copied response, against an in-memory replica:
// the allocations are the proxy's own (the replica's Response accounts for
// three of them).
func BenchmarkProxyHotPath(b *testing.B) {
	eps := newFakeEndpoints()
	eps.setRaw("users", Endpoint{ID: "u0", Addr: "127.0.0.1:1", Ready: true}, Endpoint{ID: "u1", Addr: "127.0.0.1:2", Ready: true})
	m, err := New(benchConfig(b), eps)
	if err != nil {
		b.Fatal(err)
	}
	m.rt1 = staticReplica{}
	h := &callerHandler{m: m, caller: "orders"}
	u, _ := url.Parse("http://users/api/items?id=1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			r := &http.Request{Method: "GET", URL: u, Host: "users", Header: http.Header{"Accept": {"*/*"}}, Body: http.NoBody, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RequestURI: u.String()}
			r = r.WithContext(context.Background())
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkProxyLoopback is a whole request through the proxy over
// loopback TCP, client and replica included, with keep-alive.
func BenchmarkProxyLoopback(b *testing.B) {
	replica := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	ln, srvURL := listenLoopback(b)
	go replica.Serve(ln)
	b.Cleanup(func() { replica.Close() })
	eps := newFakeEndpoints()
	eps.setRaw("users", Endpoint{ID: "u0", Addr: strings.TrimPrefix(srvURL, "http://"), Ready: true})
	m, err := New(benchConfig(b), eps)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Stop(context.Background()) })
	proxy, _ := m.ProxyURL("orders")
	pu, _ := url.Parse(proxy)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get("http://users/api/items")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func BenchmarkPick(b *testing.B) {
	for _, alg := range []struct {
		name string
		a    lbAlg
	}{{"round_robin", lbRoundRobin}, {"least_request", lbLeastRequest}, {"random", lbRandom}, {"ring_hash", lbRingHash}} {
		b.Run(alg.name, func(b *testing.B) {
			eps := make([]*endpoint, 5)
			for i := range eps {
				eps[i] = &endpoint{id: string(rune('a' + i))}
			}
			s := &snapshot{eps: eps, ring: buildRing(eps)}
			var rr uint64Counter
			key := hashString("user-42")
			b.ReportAllocs()
			for b.Loop() {
				s.pick(alg.a, &rr, key, true, nil)
			}
		})
	}
}

func BenchmarkAuthzCheck(b *testing.B) {
	c, err := compile(benchConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	a := &c.services["users"].authz
	r, _ := http.NewRequest("GET", "http://users/api/items", nil)
	src := peer{principal: "orders", namespace: "shop"}
	b.ReportAllocs()
	for b.Loop() {
		if !a.check(src, r).allowed {
			b.Fatal("denied")
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	tel, _ := newTelemetry(prometheus.NewRegistry(), nil)
	k := cellKey{reporter: reporterSource, code: 200, src: "orders", srcNS: "shop", dst: "users", dstNS: "shop", security: unknown}
	b.ReportAllocs()
	for b.Loop() {
		tel.observe(k, 0.3)
	}
}
