package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/prometheus/client_golang/prometheus"
)

const benchSpec = `
name: bench
services:
  backend: {image: b:1}
gateway:
  stages:
    $default: {throttle: {rate: 1000000000, burst: 1000000000}}
  authorizers:
    jwt: {type: jwt, issuer: https://auth.test/, audience: [shop-api], jwksFile: jwks.json}
  routes:
    - {path: /status, methods: [GET], integration: {type: mock, body: '{"ok":true}', headers: {content-type: application/json}}}
    - {path: "/plain/{id}", methods: [GET], integration: {type: http, url: "http://backend.test/items/{id}"}}
    - path: /auth/{id}
      methods: [GET]
      authorizer: jwt
      throttle: {rate: 1000000000, burst: 1000000000}
      integration: {type: http, url: "http://backend.test/items/{id}"}
    - path: /cached/{id}
      methods: [GET]
      integration: {type: http, url: "http://backend.test/items/{id}"}
      cache: {ttl: 1h, keys: [path.id]}
`

// memBackend answers in memory, so that benchmarks measure the gateway
// alone. It allocates the response, its header and its body reader (3
// objects) per request, which the figures include.
type memBackend struct{ body string }

func (m memBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, ContentLength: int64(len(m.body)),
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader(m.body))}, nil
}

// discardWriter is a ResponseWriter that keeps only its header map.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func benchGateway(b *testing.B) (*Gateway, string) {
	is := newIssuer(b)
	is.addKey(b, "k1", jwa.ES256(), true)
	app, _ := loadSpec(b, benchSpec, map[string]string{"jwks.json": string(is.jwks(b))})
	g, err := New(Config{App: app, Transport: memBackend{"hello from the backend\n"}, Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	return g, is.sign(b, "k1", g.now(), nil)
}

func runBench(b *testing.B, g *Gateway, path string, hdr ...string) {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = "127.0.0.1:5000"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	keep := r.Header.Clone()
	w := &discardWriter{h: http.Header{}}
	g.ServeHTTP(w, r)
	if w.status != 200 {
		b.Fatalf("%s: %d", path, w.status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		// Undo what the gateway adds to the request (the client sends a
		// new one each time).
		for k := range r.Header {
			if _, ok := keep[k]; !ok {
				delete(r.Header, k)
			}
		}
		g.ServeHTTP(w, r)
	}
	if w.status != 200 {
		b.Fatalf("%s: %d", path, w.status)
	}
}

// BenchmarkGatewayMock is the gateway's own path with nothing behind it.
func BenchmarkGatewayMock(b *testing.B) {
	g, _ := benchGateway(b)
	runBench(b, g, "/status")
}

// BenchmarkGatewayPlain is a route with an http integration and a path
// parameter, the stage throttle and metrics on.
func BenchmarkGatewayPlain(b *testing.B) {
	g, _ := benchGateway(b)
	runBench(b, g, "/plain/42")
}

// BenchmarkGatewayJWTThrottle adds a JWT (checked once, then from the
// gateway's memory of verified tokens) and a route throttle.
func BenchmarkGatewayJWTThrottle(b *testing.B) {
	g, token := benchGateway(b)
	runBench(b, g, "/auth/42", "Authorization", "Bearer "+token)
}

// BenchmarkGatewayCacheHit answers from the stage's cache.
func BenchmarkGatewayCacheHit(b *testing.B) {
	g, _ := benchGateway(b)
	runBench(b, g, "/cached/42")
}

// BenchmarkJWTVerify is a token's first check: signature (ES256) and
// claims, what a new token costs.
func BenchmarkJWTVerify(b *testing.B) {
	g, token := benchGateway(b)
	a := g.cur.Load().routes[2].auth.(*jwtAuthorizer)
	now := g.now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.verify(context.Background(), token, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouterMatch is the trie lookup of a two-parameter path among a
// few dozen routes.
func BenchmarkRouterMatch(b *testing.B) {
	root := &node{}
	for _, tmpl := range []string{"/users", "/users/{id}", "/users/{id}/orders", "/users/{id}/orders/{order}", "/products", "/products/{id}",
		"/orders", "/orders/{id}", "/files/{path+}", "/admin/reports", "/status"} {
		params, _ := checkTemplate(tmpl)
		if err := root.insert(&route{path: tmpl, params: params, anyMethod: true}); err != nil {
			b.Fatal(err)
		}
	}
	vals := make([]string, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		n, v := root.match("/users/42/orders/7", vals[:0])
		if n == nil || len(v) != 2 {
			b.Fatal("no match")
		}
	}
}
