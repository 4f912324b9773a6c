package edgeheader

import (
	"crypto/tls"
	"net/http"
	"testing"
)

func TestIsIdentity(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"Nubo-Principal": true, "nubo-principal": true, "NUBO_PRINCIPAL": true, "Nubo_principal": true,
		"Nubo-Authorizer": true, "Nubo-Context-Tenant": true, "Nubo_Context_Tenant": true, "nubo-context": true,
		"Nubo-Cache": false, "Nubo-Principals": false, "Nubo": false, "X-Nubo-Principal": false, "Principal": false,
	} {
		if got := IsIdentity(name); got != want {
			t.Errorf("IsIdentity(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestEdge(t *testing.T) {
	t.Parallel()
	r, err := http.NewRequest("GET", "http://shop.localhost/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "10.0.0.7:5555"
	r.TLS = &tls.ConnectionState{}
	r.Header = http.Header{
		"Nubo-Principal":      {"admin"},
		"Nubo_principal":      {"admin"},
		"Nubo-Context-Role":   {"root"},
		"X-Forwarded-For":     {"1.2.3.4"},
		"X-Forwarded-Proto":   {"http"},
		"X-Forwarded-Host":    {"evil.example"},
		"Accept":              {"*/*"},
		"Nubo-Cache-Override": {"kept"},
	}
	Edge(r)
	want := http.Header{
		"X-Forwarded-For":     {"1.2.3.4, 10.0.0.7"},
		"X-Forwarded-Proto":   {"https"},
		"X-Forwarded-Host":    {"shop.localhost"},
		"Accept":              {"*/*"},
		"Nubo-Cache-Override": {"kept"},
	}
	if len(r.Header) != len(want) {
		t.Errorf("headers %v, want %v", r.Header, want)
	}
	for k, v := range want {
		if got := r.Header[k]; len(got) != 1 || got[0] != v[0] {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestFromEdge(t *testing.T) {
	t.Parallel()
	r, _ := http.NewRequest("GET", "http://x/", nil)
	if IsFromEdge(r) {
		t.Error("an unmarked request is from the edge")
	}
	if !IsFromEdge(FromEdge(r)) {
		t.Error("a marked request is not from the edge")
	}
}

func BenchmarkStripIdentity(b *testing.B) {
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}, "Content-Type": {"application/json"}, "Authorization": {"Bearer x"}}
	b.ReportAllocs()
	for b.Loop() {
		StripIdentity(h)
	}
}
