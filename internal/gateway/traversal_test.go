package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/urlpath/urlpathtest"
)

// TestTraversal sends the traversal corpus through {proxy+} and {param}
// routes to a lenient file server whose secret lies beside the routes'
// directory: none may reach it.
func TestTraversal(t *testing.T) {
	t.Parallel()
	addr, files := startFilesGateway(t)

	// The backend is vulnerable on its own, and the routes do reach it:
	// the test could not pass for want of either.
	if status, body := urlpathtest.Get(t, strings.TrimPrefix(files, "http://"), "files", "/public/../private/secret.txt"); status != http.StatusOK || body != urlpathtest.Secret {
		t.Fatalf("the file server alone: %d %q, want the secret", status, body)
	}
	for _, target := range []string{"/api/static/hello.txt", "/api/one/hello.txt", "/api/public/hello.txt", "/api/static/x/../hello.txt"} {
		if status, body := urlpathtest.Get(t, addr, "shop", target); status != http.StatusOK || body != urlpathtest.Public {
			t.Fatalf("GET %s: %d %q, want the public file", target, status, body)
		}
	}

	for _, prefix := range []string{"/api/static", "/api/one", "/api/public"} {
		for _, target := range urlpathtest.Corpus {
			target = strings.Replace(target, "/public", prefix, 1)
			status, body := urlpathtest.Get(t, addr, "shop", target)
			if strings.Contains(body, urlpathtest.Secret) {
				t.Errorf("GET %s: %d, served the secret", target, status)
			}
		}
	}
	// An escaped slash is refused, as Envoy's REJECT_REQUEST does.
	if status, _ := urlpathtest.Get(t, addr, "shop", "/api/static/..%2Fprivate%2Fsecret.txt"); status != http.StatusBadRequest {
		t.Errorf("escaped slash: %d, want 400", status)
	}
}

// startFilesGateway starts a gateway whose routes lead to a file server as
// lenient as real ones get, with a secret beside the routes' directory
// (urlpathtest.FileServer), and returns its address and the file server's
// URL.
func startFilesGateway(tb testing.TB) (addr, files string) {
	files = urlpathtest.FileServer(tb)
	tg := startGateway(tb, `
name: shop
services:
  files: {image: files:1}
gateway:
  stages:
    api: {}
  routes:
    - path: /static/{proxy+}
      methods: [GET]
      integration: {type: service, service: files, path: "/public/{proxy+}"}
    - path: /one/{name}
      methods: [GET]
      integration: {type: service, service: files, path: "/public/{name}"}
    - path: /public/{rest+}
      methods: [GET]
      integration: {type: service, service: files}
`, nil, func(c *Config) { c.Services = servicesOf(map[string]string{"files": files}) })
	return strings.TrimPrefix(tg.url, "http://"), files
}
