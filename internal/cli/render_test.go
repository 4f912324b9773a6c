package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	// A value in the environment under a secret's key must not reach the
	// output: render never has secret values.
	t.Setenv("PAYMENTS_API_KEY", "marker-from-the-environment")
	r := runInProcess(t, "render", "-f", "../../examples/shop/nubo.yaml", "--image", "nubo:test")
	if r.code != 0 {
		t.Fatalf("render: %s", r)
	}
	for _, want := range []string{"kind: Deployment", "kind: VirtualService", "kind: Cluster", "image: nubo:test", "kind: Secret"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "marker-from-the-environment") {
		t.Error("a secret's value reached the output")
	}
	if !strings.Contains(r.stderr, "examples/shop/nubo.yaml:") || !strings.Contains(r.stderr, "databases.shop-db.backup.destination: warning:") {
		t.Errorf("stderr lacks the warning at its place in the spec:\n%s", r.stderr)
	}

	dir := t.TempDir()
	stale := filepath.Join(dir, "06-functions.yaml")
	r = runInProcess(t, "render", "-f", "../../internal/spec/testdata/nubo.reference.yaml", "-o", dir)
	if r.code != 0 {
		t.Fatalf("render -o: %s", r)
	}
	if !strings.Contains(r.stdout, filepath.Join(dir, "02-workloads.yaml")) {
		t.Errorf("stdout does not list the files written:\n%s", r.stdout)
	}
	data, err := os.ReadFile(filepath.Join(dir, "02-workloads.yaml"))
	if err != nil || !strings.Contains(string(data), "kind: Deployment") {
		t.Fatalf("02-workloads.yaml: %v\n%s", err, data)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("the reference renders Knative Services: %v", err)
	}

	// Rendering into the same folder a spec without functions removes their
	// file: the folder holds one rendering.
	spec := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(spec, []byte("name: small\nservices:\n  web: {image: web:1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r = runInProcess(t, "render", "-f", spec, "-o", dir); r.code != 0 {
		t.Fatalf("render -o: %s", r)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("06-functions.yaml left from the earlier rendering: %v", err)
	}
}

func TestRenderErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(bad, []byte("name: x\nservices:\n  web: {imag: web:1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"invalid spec", []string{"render", "-f", bad}, exitFail, `unknown field "imag"`},
		{"missing spec", []string{"render", "-f", filepath.Join(t.TempDir(), "none.yaml")}, exitFail, "no such file"},
		{"argument", []string{"render", "extra"}, exitUsage, "unknown command"},
		{"deploy timeout", []string{"deploy", "-f", bad, "--timeout", "0s"}, exitUsage, "--timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runInProcess(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("got %s\nwant exit %d and %q on stderr", r, tc.code, tc.want)
			}
		})
	}
}
