package mesh

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/urlpath/urlpathtest"
)

// TestTraversal sends the traversal corpus to a lenient file server whose
// secret lies beside /public: through an ingress rule for /public, and
// through the mesh (the HTTP_PROXY listener and a service URL) to a
// service whose policy denies /private*. None may reach the secret.
func TestTraversal(t *testing.T) {
	t.Parallel()
	files := urlpathtest.FileServer(t)
	u, err := url.Parse(files)
	if err != nil {
		t.Fatal(err)
	}
	eps := newFakeEndpoints()
	eps.setRaw("files", Endpoint{ID: "files-0", Addr: u.Host, Ready: true})
	cfg := baseConfig(t, "files")
	cfg.IngressHTTP = "127.0.0.1:0"
	cfg.Ingress = []*spec.Ingress{{Name: "web", Paths: []*spec.IngressPath{{Path: "/public", To: "service:files"}}}}
	cfg.Mesh.Policies = []*spec.Policy{
		{Name: "ingress", To: "files", Action: "allow", From: spec.PolicySource{Principals: []string{"*"}}},
		{Name: "no-private", To: "files", Action: "deny", When: []*spec.PolicyCondition{{Key: "request.path", Values: []string{"/private*"}}}},
	}
	m := startMesh(t, cfg, eps)
	ingress, _ := m.IngressAddrs()
	proxy, err := m.ProxyURL("orders")
	if err != nil {
		t.Fatal(err)
	}
	svcURL, err := m.ServiceURL("orders", "files")
	if err != nil {
		t.Fatal(err)
	}
	entries := []struct {
		name, addr, prefix string // prefix: what comes before the path
	}{
		{"ingress", ingress, ""},
		{"proxy", strings.TrimPrefix(proxy, "http://"), "http://files"},
		{"service URL", strings.TrimPrefix(svcURL, "http://"), ""},
	}

	// The backend is vulnerable on its own and each entry reaches it, so
	// the test cannot pass for want of either.
	if status, body := urlpathtest.Get(t, u.Host, "files", "/public/../private/secret.txt"); status != http.StatusOK || body != urlpathtest.Secret {
		t.Fatalf("the file server alone: %d %q, want the secret", status, body)
	}
	for _, e := range entries {
		for _, target := range []string{"/public/hello.txt", "/public/x/../hello.txt", "/public//hello.txt"} {
			if status, body := urlpathtest.Get(t, e.addr, "files", e.prefix+target); status != http.StatusOK || body != urlpathtest.Public {
				t.Fatalf("%s: GET %s: %d %q, want the public file", e.name, target, status, body)
			}
		}
	}

	for _, e := range entries {
		for _, target := range urlpathtest.Corpus {
			status, body := urlpathtest.Get(t, e.addr, "files", e.prefix+target)
			if strings.Contains(body, urlpathtest.Secret) {
				t.Errorf("%s: GET %s: %d, served the secret", e.name, target, status)
			}
		}
		// The policy sees the path the backend gets.
		if status, body := urlpathtest.Get(t, e.addr, "files", e.prefix+"/public/%2e%2e/private/secret.txt"); status == http.StatusOK {
			t.Errorf("%s: /public/%%2e%%2e/private/secret.txt: %d %q, want it denied or not routed", e.name, status, body)
		}
		if status, _ := urlpathtest.Get(t, e.addr, "files", e.prefix+"/public/..%2Fprivate%2Fsecret.txt"); status != http.StatusBadRequest {
			t.Errorf("%s: escaped slash: %d, want 400", e.name, status)
		}
	}
}

// TestEgressPathUntouched checks that a call outside the mesh keeps its
// path as written: normalising is for the mesh's own services, and an API
// outside may want its %2F.
func TestEgressPathUntouched(t *testing.T) {
	t.Parallel()
	outside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.EscapedPath())
	}))
	t.Cleanup(outside.Close)
	m := startMesh(t, baseConfig(t, "users"), newFakeEndpoints())
	proxy, err := m.ProxyURL("orders")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(outside.URL)
	const path = "/api/v4/projects/group%2Fproject"
	status, body := urlpathtest.Get(t, strings.TrimPrefix(proxy, "http://"), u.Host, outside.URL+path)
	if status != http.StatusOK || body != path {
		t.Errorf("egress: %d %q, want %q", status, body, path)
	}
}
