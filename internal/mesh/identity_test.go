package mesh

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/edgeheader"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/urlpath/urlpathtest"
)

// headerEcho answers with the request's headers as JSON.
func headerEcho(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r.Header)
}

// TestIdentityHeaders sends spoofed identity headers, in every spelling,
// through each entry of the mesh: the ingress to a service and to the
// gateway, a workload's proxy listener and its service URL. Only the
// gateway, which sets them from what it verified, may pass them on. The
// ingress sets X-Forwarded-* as an edge.
func TestIdentityHeaders(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(headerEcho))
	t.Cleanup(backend.Close)
	u, _ := url.Parse(backend.URL)
	eps := newFakeEndpoints()
	eps.setRaw("users", Endpoint{ID: "users-0", Addr: u.Host, Ready: true})
	cfg := baseConfig(t, "users")
	cfg.IdentityCallers = []string{"gateway"}
	cfg.IngressHTTP = "127.0.0.1:0"
	cfg.Ingress = []*spec.Ingress{{Name: "web", Paths: []*spec.IngressPath{
		{Path: "/api", To: "gateway"},
		{Path: "/", To: "service:users"},
	}}}
	m := startMesh(t, cfg, eps)
	m.SetGateway(http.HandlerFunc(headerEcho))
	ingress, _ := m.IngressAddrs()
	addr := func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(s, "http://")
	}
	spoofed := []string{
		"Nubo-Principal", "admin",
		"nubo_principal", "admin",
		"NUBO-CONTEXT-ROLE", "root",
		"Nubo_Context_Tenant", "all",
		"Nubo-Authorizer", "jwt",
		"X-Forwarded-Host", "evil.example",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-For", "10.9.9.9",
	}
	edge := map[string]string{"X-Forwarded-Host": "shop.localhost", "X-Forwarded-Proto": "http", "X-Forwarded-For": "10.9.9.9, 127.0.0.1"}
	tests := []struct {
		name, addr, target string
		identity           bool              // identity headers pass
		forwarded          map[string]string // X-Forwarded-* the backend gets
	}{
		{"ingress to a service", ingress, "/users", false, edge},
		{"ingress to the gateway", ingress, "/api/users", false, edge},
		{"proxy listener", addr(m.ProxyURL("orders")), "http://users/x", false, nil},
		{"service URL", addr(m.ServiceURL("orders", "users")), "/x", false, nil},
		{"the gateway's service URL", addr(m.ServiceURL("gateway", "users")), "/x", true, nil},
	}
	for _, tt := range tests {
		status, body := urlpathtest.Get(t, tt.addr, "shop.localhost", tt.target, spoofed...)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %q", tt.name, status, body)
		}
		var h http.Header
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("%s: %v: %q", tt.name, err, body)
		}
		got := map[string]string{}
		for name, vals := range h {
			if edgeheader.IsIdentity(name) {
				got[name] = strings.Join(vals, ",")
			}
		}
		want := map[string]string{}
		if tt.identity {
			want = map[string]string{"Nubo-Principal": "admin", "Nubo_principal": "admin", "Nubo-Context-Role": "root", "Nubo_context_tenant": "all", "Nubo-Authorizer": "jwt"}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: the backend got identity headers %q, want %q", tt.name, got, want)
		}
		for name, want := range tt.forwarded {
			if got := strings.Join(h[name], ","); got != want {
				t.Errorf("%s: %s %q, want %q", tt.name, name, got, want)
			}
		}
	}
}
