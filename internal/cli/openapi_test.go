package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenAPI runs nubo openapi offline on the shop example, in both
// formats, and its usage errors. The document's validity as OpenAPI 3.1 is
// checked by the gateway package's tests.
func TestOpenAPI(t *testing.T) {
	r := runInProcess(t, "openapi", "-f", "../../examples/shop/nubo.yaml", "-o", "json", "--server", "http://127.0.0.1:8000")
	if r.code != 0 {
		t.Fatalf("openapi -o json: %s", r)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Info    struct{ Title string }    `json:"info"`
		Servers []struct{ URL string }    `json:"servers"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if doc.OpenAPI != "3.1.0" || doc.Info.Title != "shop-api" || len(doc.Servers) != 2 || doc.Servers[1].URL != "http://127.0.0.1:8000/prod" {
		t.Errorf("document: %+v", doc)
	}
	if doc.Paths["/orders/{id}"]["get"] == nil {
		t.Errorf("paths lack GET /orders/{id}: %v", doc.Paths)
	}

	r = runInProcess(t, "openapi", "-f", "../../examples/shop/nubo.yaml")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "openapi: 3.1.0\n") || !strings.Contains(r.stdout, "securitySchemes:") {
		t.Errorf("openapi (yaml): %s", r)
	}

	noGateway := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(noGateway, []byte("name: small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"openapi", "-f", noGateway}, 1, "has no gateway section"},
		{[]string{"openapi", "-f", noGateway, "-o", "xml"}, 2, `--output "xml"`},
		{[]string{"openapi", "-f", noGateway, "--server", "ftp://x"}, 2, "--server"},
		{[]string{"openapi", "-f", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "no such file"},
	} {
		r := runInProcess(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %s, want exit %d and %q", c.args, r, c.code, c.want)
		}
	}
}
