package mesh

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
)

func TestIngressTLS(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "users %s %s %s", r.URL.Path, r.Header.Get("X-Forwarded-Proto"), r.Host)
	})...)
	eps.set("web", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "web") })...)
	cfg := baseConfig(t, "users", "web")
	cfg.CADir = t.TempDir()
	cfg.IngressHTTP, cfg.IngressHTTPS = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Ingress = []*spec.Ingress{
		{Name: "shop", Host: "shop.localhost", TLS: true, Paths: []*spec.IngressPath{
			{Path: "/api", To: "gateway"},
			{Path: "/", To: "service:users", Port: 80},
		}},
		{Name: "tenants", Host: "*.tenants.localhost", Paths: []*spec.IngressPath{{Path: "/app/", To: "service:web"}}},
	}
	m := startMesh(t, cfg, eps)
	httpAddr, httpsAddr := m.IngressAddrs()
	if httpAddr == "" || httpsAddr == "" {
		t.Fatalf("ingress listeners %q %q", httpAddr, httpsAddr)
	}

	pemBytes, err := os.ReadFile(CACertPath(cfg.CADir))
	if err != nil {
		t.Fatalf("the local CA certificate is not at CACertPath: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("CA certificate is not PEM")
	}
	secure := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialTLSContext:  nil,
	}}
	// Browsers resolve *.localhost to this machine; the test dials the
	// listener and keeps the name for SNI and verification.
	secure.Transport.(*http.Transport).DialContext = dialTo(httpsAddr)
	plain := &http.Client{Transport: &http.Transport{DialContext: dialTo(httpAddr)}}

	for _, tc := range []struct {
		c    *http.Client
		url  string
		code int
		body string
	}{
		{secure, "https://shop.localhost/users/1", 200, "users /users/1 https shop.localhost"},
		{secure, "https://shop.localhost/api/orders", 502, "gateway: not running"},
		{secure, "https://shop.localhost/apis", 200, "users /apis"},
		{plain, "http://shop.localhost/users/1", 200, "users /users/1 http"},
		{plain, "http://a.tenants.localhost/app/x", 200, "web"},
		{plain, "http://a.tenants.localhost/app", 200, "web"},
		{plain, "http://a.tenants.localhost/apple", 404, "no ingress rule"},
		{plain, "http://a.b.tenants.localhost/app/x", 404, "no ingress rule"},
		{plain, "http://other.localhost/", 404, "no ingress rule"},
	} {
		code, body := get(t, tc.c, tc.url)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s = %d %q, want %d with %q", tc.url, code, body, tc.code, tc.body)
		}
	}
	// A non-TLS ingress is not served over HTTPS: its host has no
	// certificate.
	if _, err := secure.Get("https://a.tenants.localhost/app/x"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("HTTPS to a non-TLS host: %v, want a certificate error", err)
	}

	m.SetGateway(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "gateway ", r.URL.Path) }))
	if code, body := get(t, secure, "https://shop.localhost/api/orders"); code != 200 || body != "gateway /api/orders" {
		t.Errorf("with a gateway: %d %q", code, body)
	}
}

// TestIngressPolicy checks that ingress traffic carries the ingress
// principal, so that allow policies must name it.
func TestIngressPolicy(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 1, whoami)...)
	cfg := baseConfig(t, "users")
	cfg.IngressHTTP = "127.0.0.1:0"
	cfg.Ingress = []*spec.Ingress{{Name: "web", Paths: []*spec.IngressPath{{Path: "/", To: "service:users"}}}}
	cfg.Mesh.Policies = []*spec.Policy{{Name: "orders-only", To: "users", Action: "allow", From: spec.PolicySource{Principals: []string{"orders"}}}}
	m := startMesh(t, cfg, eps)
	httpAddr, _ := m.IngressAddrs()
	if code, _ := get(t, http.DefaultClient, "http://"+httpAddr+"/"); code != http.StatusForbidden {
		t.Errorf("ingress to a service that allows only orders: %d, want 403", code)
	}
	cfg.Mesh.Policies[0].From.Principals = append(cfg.Mesh.Policies[0].From.Principals, IngressPrincipal)
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, http.DefaultClient, "http://"+httpAddr+"/"); code != http.StatusOK {
		t.Errorf("after allowing %q: %d, want 200", IngressPrincipal, code)
	}
}
