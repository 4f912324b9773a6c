package gateway

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/edgeheader"
)

// spoofed are identity headers in the spellings a backend may read as
// Nubo-Principal or Nubo-Context-*: any case, "_" for "-".
var spoofed = []string{
	"Nubo-Principal", "admin",
	"nubo_principal", "admin",
	"NUBO-CONTEXT-ROLE", "root",
	"Nubo_Context_Tenant", "all",
	"Nubo-Authorizer", "jwt",
}

// TestIdentityHeaders checks that no spelling of a client's identity
// headers reaches a backend, that an authorizer's own do, and that
// X-Forwarded-* are set as at an edge.
func TestIdentityHeaders(t *testing.T) {
	t.Parallel()
	orders := newEchoBackend(t)
	tg := startGateway(t, apiKeySpec+`    - {path: /open, methods: [GET], integration: {type: service, service: orders}}
`, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"orders": orders.URL})
		c.Secrets = partnerSecrets
	})
	edge := []string{"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https", "X-Forwarded-For", "10.9.9.9", "Host", "shop.localhost"}
	for _, tc := range []struct {
		path     string
		headers  []string
		identity map[string]string // all the identity headers the backend gets
	}{
		{"/open", nil, map[string]string{}},
		{"/orders", []string{"X-Api-Key", "acme-key-0123456789"},
			map[string]string{"Nubo-Principal": "acme", "Nubo-Authorizer": "partners", "Nubo-Context-Apikey": "acme"}},
	} {
		r := call(t, "GET", tg.url+tc.path, "", append(append(append([]string{}, spoofed...), edge...), tc.headers...)...)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", tc.path, r.status, r.body)
		}
		s := r.seen(t)
		got := map[string]string{}
		for name, vals := range s.Headers {
			if edgeheader.IsIdentity(name) {
				got[name] = strings.Join(vals, ",")
			}
		}
		if !maps.Equal(got, tc.identity) {
			t.Errorf("%s: the backend got identity headers %q, want %q", tc.path, got, tc.identity)
		}
		for name, want := range map[string]string{"X-Forwarded-Host": "shop.localhost", "X-Forwarded-Proto": "http", "X-Forwarded-For": "10.9.9.9, 127.0.0.1"} {
			if got := strings.Join(s.Headers[name], ","); got != want {
				t.Errorf("%s: %s %q, want %q", tc.path, name, got, want)
			}
		}
	}
}

// TestForwardedBehindIngress checks that behind nubo's ingress, which sets
// X-Forwarded-* as an edge, the gateway keeps them rather than counting
// the in-process hop as a client.
func TestForwardedBehindIngress(t *testing.T) {
	t.Parallel()
	orders := newEchoBackend(t)
	tg := startGateway(t, apiKeySpec+`    - {path: /open, methods: [GET], integration: {type: service, service: orders}}
`, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"orders": orders.URL})
		c.Secrets = partnerSecrets
	})
	// What the ingress does before it hands a request to the gateway.
	ingress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		edgeheader.Edge(r)
		tg.g.Handler().ServeHTTP(w, edgeheader.FromEdge(r))
	}))
	t.Cleanup(ingress.Close)
	r := call(t, "GET", ingress.URL+"/open", "", append(append([]string{}, spoofed...), "X-Forwarded-For", "10.9.9.9", "X-Forwarded-Host", "evil.example", "Host", "shop.localhost")...)
	s := r.seen(t)
	for name, want := range map[string]string{"X-Forwarded-Host": "shop.localhost", "X-Forwarded-Proto": "http", "X-Forwarded-For": "10.9.9.9, 127.0.0.1"} {
		if got := strings.Join(s.Headers[name], ","); got != want {
			t.Errorf("%s %q, want %q", name, got, want)
		}
	}
	for name := range s.Headers {
		if edgeheader.IsIdentity(name) {
			t.Errorf("the backend got %s", name)
		}
	}
}
