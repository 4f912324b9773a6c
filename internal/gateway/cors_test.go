package gateway

import (
	"net/http"
	"strings"
	"testing"
)

const corsSpec = `
name: shop
services:
  catalog: {image: catalog:1}
gateway:
  authorizers:
    jwt: {type: jwt, issuer: https://auth.test/, jwksFile: jwks.json}
  routes:
    - path: /products
      methods: [GET, PUT]
      authorizer: jwt
      cors:
        allowOrigins: [https://shop.example.com, http://localhost:5173]
        allowMethods: [GET, PUT]
        allowHeaders: [Authorization, X-Request-Id]
        exposeHeaders: [x-catalog-version, x-request-id]
        maxAge: 600
        allowCredentials: true
      integration: {type: service, service: catalog}
    - path: /products
      methods: [DELETE]
      integration: {type: service, service: catalog}
    - path: /public
      methods: [GET, POST]
      cors: {allowOrigins: ["*"], allowHeaders: ["*"]}
      integration: {type: service, service: catalog}
    - path: /open
      methods: [ANY]
      cors: {allowOrigins: [https://a.example]}
      integration: {type: service, service: catalog}
    - path: /own-options
      methods: [OPTIONS]
      integration: {type: mock, status: 200, body: mine}
    - path: /nocors
      methods: [GET]
      integration: {type: service, service: catalog}
`

// TestCORSPreflight is the preflight matrix: origins, methods, headers,
// credentials, max age and wildcards, as the Fetch standard has them.
func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	catalog := newEchoBackend(t)
	tg := startGateway(t, corsSpec, map[string]string{"jwks.json": `{"keys": []}`}, func(c *Config) {
		c.Services = servicesOf(map[string]string{"catalog": catalog.URL})
	})
	type want struct {
		status                int
		origin, methods, hdrs string
		credentials, maxAge   string
		passedToRoute         bool
	}
	tests := []struct {
		name, path, origin, method, reqHeaders string
		want                                   want
	}{
		{"allowed", "/products", "https://shop.example.com", "PUT", "authorization, x-request-id",
			want{204, "https://shop.example.com", "GET, PUT", "authorization, x-request-id", "true", "600", false}},
		{"allowed, second origin", "/products", "http://localhost:5173", "GET", "",
			want{204, "http://localhost:5173", "GET, PUT", "", "true", "600", false}},
		{"origin not allowed", "/products", "https://evil.example", "GET", "", want{status: 403}},
		{"origin differs in scheme", "/products", "http://shop.example.com", "GET", "", want{status: 403}},
		{"header not allowed", "/products", "https://shop.example.com", "PUT", "x-other", want{status: 403}},
		{"method routed without cors", "/products", "https://shop.example.com", "DELETE", "", want{status: 403}},
		{"method not routed", "/products", "https://shop.example.com", "PATCH", "", want{status: 403}},
		{"wildcard origin", "/public", "https://anyone.example", "POST", "x-custom, content-type",
			want{204, "*", "GET, POST", "x-custom, content-type", "", "", false}},
		{"wildcard headers never cover authorization", "/public", "https://anyone.example", "GET", "authorization", want{status: 403}},
		{"safelisted method not listed", "/public", "https://anyone.example", "HEAD", "", want{status: 403}},
		{"ANY route echoes the method", "/open", "https://a.example", "PATCH", "",
			want{204, "https://a.example", "PATCH", "", "", "", false}},
		{"route without cors", "/nocors", "https://shop.example.com", "GET", "", want{status: 403}},
		{"OPTIONS route of its own", "/own-options", "https://shop.example.com", "GET", "", want{status: 200, passedToRoute: true}},
		{"no route", "/nothing", "https://shop.example.com", "GET", "", want{status: 404}},
	}
	for _, tt := range tests {
		hdr := []string{"Origin", tt.origin, "Access-Control-Request-Method", tt.method}
		if tt.reqHeaders != "" {
			hdr = append(hdr, "Access-Control-Request-Headers", tt.reqHeaders)
		}
		r := call(t, "OPTIONS", tg.url+tt.path, "", hdr...)
		w := tt.want
		if r.status != w.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, w.status)
			continue
		}
		if w.passedToRoute {
			if r.body != "mine" {
				t.Errorf("%s: %q, want the route's own answer", tt.name, r.body)
			}
			continue
		}
		got := func(h string) string { return r.header.Get(h) }
		if w.status != 204 {
			if got("Access-Control-Allow-Origin") != "" || got("Access-Control-Allow-Methods") != "" {
				t.Errorf("%s: a refused preflight has CORS headers: %v", tt.name, r.header)
			}
			continue
		}
		for _, c := range []struct{ h, want string }{
			{"Access-Control-Allow-Origin", w.origin},
			{"Access-Control-Allow-Methods", w.methods},
			{"Access-Control-Allow-Headers", w.hdrs},
			{"Access-Control-Allow-Credentials", w.credentials},
			{"Access-Control-Max-Age", w.maxAge},
		} {
			if got(c.h) != c.want {
				t.Errorf("%s: %s %q, want %q", tt.name, c.h, got(c.h), c.want)
			}
		}
		if vary := strings.Join(r.header.Values("Vary"), ","); !strings.Contains(vary, "Origin") {
			t.Errorf("%s: Vary %q lacks Origin", tt.name, vary)
		}
	}
	if catalog.hits.Load() != 0 {
		t.Errorf("%d preflights reached the backend", catalog.hits.Load())
	}
}

// TestCORSActual checks the headers of requests that are not preflights,
// also on the gateway's own error answers, and that the backend's CORS
// headers yield to the route's.
func TestCORSActual(t *testing.T) {
	t.Parallel()
	catalog := newEchoBackend(t)
	tg := startGateway(t, corsSpec, map[string]string{"jwks.json": `{"keys": []}`}, func(c *Config) {
		c.Services = servicesOf(map[string]string{"catalog": catalog.URL})
	})
	r := call(t, "GET", tg.url+"/public", "", "Origin", "https://anyone.example")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("wildcard: %d %v", r.status, r.header)
	}
	// 401 from the authorizer still carries CORS, so the page can read it.
	r = call(t, "GET", tg.url+"/products", "", "Origin", "https://shop.example.com")
	if r.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.status)
	}
	for h, want := range map[string]string{
		"Access-Control-Allow-Origin":      "https://shop.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Expose-Headers":    "x-catalog-version, x-request-id",
		"Vary":                             "Origin",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s %q, want %q", h, got, want)
		}
	}
	r = call(t, "GET", tg.url+"/products", "", "Origin", "https://evil.example")
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Vary") != "Origin" {
		t.Errorf("another origin: %v", r.header)
	}
	if r := call(t, "GET", tg.url+"/nocors", "", "Origin", "https://evil.example"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a route without cors: %v", r.header)
	}
}
