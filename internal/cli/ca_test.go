package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/mesh/localca"
)

func TestCA(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nubo.yaml")
	os.WriteFile(file, []byte("name: a\n"), 0o644)
	r := runInProcess(t, "ca", "-f", file)
	if r.code != 1 || !strings.Contains(r.stderr, "does not exist yet: nubo up creates it") {
		t.Fatalf("before any CA:\n%s", r)
	}
	if _, err := localca.Open(filepath.Join(dir, ".nubo", "ca")); err != nil {
		t.Fatal(err)
	}
	r = runInProcess(t, "ca", "-f", file)
	want := localca.CertPath(filepath.Join(dir, ".nubo", "ca"))
	if r.code != 0 || strings.TrimSpace(r.stdout) != want || !strings.Contains(r.stderr, "update-ca-certificates") {
		t.Fatalf("want the path %s and how to trust it:\n%s", want, r)
	}
}
