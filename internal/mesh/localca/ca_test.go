package localca

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenIssueReload(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca.CertPath() != CertPath(dir) {
		t.Errorf("CertPath %s, want %s", ca.CertPath(), CertPath(dir))
	}
	st, err := os.Stat(filepath.Join(dir, keyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	for _, host := range []string{"shop.localhost", "*.tenants.localhost", "127.0.0.1"} {
		leaf, err := ca.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		name := host
		if host == "*.tenants.localhost" {
			name = "a.tenants.localhost"
		}
		opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}
		if _, err := leaf.Leaf.Verify(opts); err != nil {
			t.Errorf("leaf for %s does not verify: %v", host, err)
		}
		again, _ := ca.Leaf(host)
		if again != leaf {
			t.Errorf("leaf for %s issued twice, want it cached", host)
		}
	}
	// Reopening loads the same CA: leaves issued before still verify.
	first, _ := ca.Leaf("shop.localhost")
	ca2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Leaf.Verify(x509.VerifyOptions{Roots: ca2.Pool(), DNSName: "shop.localhost"}); err != nil {
		t.Errorf("reopened CA does not verify a leaf of the first: %v", err)
	}
	// A broken CA is an error, not silently replaced.
	os.WriteFile(filepath.Join(dir, certFile), []byte("junk"), 0o644)
	if _, err := Open(dir); err == nil {
		t.Error("Open accepted a corrupt certificate")
	}
}
