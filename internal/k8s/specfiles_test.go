package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
)

// TestJWKSFileByAbsolutePath: a key-set file named by its absolute path
// inside the spec's folder is mounted as the relative path it is; one
// outside the folder is refused with the folder named.
func TestJWKSFileByAbsolutePath(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(dir, "keys", "jwks.json")
	outside := filepath.Join(t.TempDir(), "jwks.json")
	for _, f := range []string{inside, outside} {
		if err := os.WriteFile(f, []byte(`{"keys":[]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	render := func(jwks string) (string, error) {
		y := fmt.Sprintf(`name: abs
gateway:
  authorizers:
    jwt: {type: jwt, jwksFile: %q, issuer: "https://issuer", audience: ["a"]}
  routes:
    - {path: /x, methods: [GET], authorizer: jwt, integration: {type: mock, status: 200}}
`, jwks)
		path := filepath.Join(dir, "nubo.yaml")
		if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		app, err := spec.Load(path)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		res, err := Render(app, Options{})
		if err != nil {
			return "", err
		}
		for _, o := range res.Objects {
			if o.GetKind() == "ConfigMap" && o.GetName() == specConfigMap {
				data, _, _ := unstructuredStrings(o.Object, "data")
				return strings.Join(data, " "), nil
			}
		}
		return "", fmt.Errorf("no %s ConfigMap", specConfigMap)
	}
	keys, err := render(inside)
	if err != nil {
		t.Fatalf("an absolute path inside the spec's folder was refused: %v", err)
	}
	if !strings.Contains(keys, "keys__jwks.json") {
		t.Errorf("the ConfigMap lacks the key-set file as keys/jwks.json: %s", keys)
	}
	_, err = render(outside)
	if err == nil || !strings.Contains(err.Error(), "outside the spec's folder "+dir) || !strings.Contains(err.Error(), "gateway.authorizers.jwt.jwksFile") {
		t.Errorf("a path outside the folder: %v", err)
	}
}

// unstructuredStrings returns the keys of the map at field.
func unstructuredStrings(obj map[string]any, field string) ([]string, bool, error) {
	m, ok := obj[field].(map[string]any)
	if !ok {
		return nil, false, nil
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out, true, nil
}
