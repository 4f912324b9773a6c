// Package databasestest helps tests run the real PostgreSQL and Redis
// servers: it finds them or skips (fails under CI, where a missing server
// is a missing install step), and makes state folders they can use.
package databasestest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/secrets"
)

// Require returns the binaries of typ's server ("postgres", "redis"), or
// skips the test when it is not installed; under CI=true it fails instead.
func Require(t testing.TB, typ string) databases.Binaries {
	t.Helper()
	b, err := databases.Finder{}.Find(typ, "")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (scripts/install-test-deps installs it): CI must test the real server", err)
		}
		t.Skipf("%v: cannot test the real server", err)
	}
	return b
}

// StateDir returns a new state folder. As root, PostgreSQL runs as an
// unprivileged user, which must be able to pass through the folders above
// its data: t.TempDir's are 0700, so they are opened to traversal (x, not
// r) here, as a user's home would be.
func StateDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		for d := dir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// Store opens the secrets store of stateDir, its identity kept beside it so
// that a second run finds the first one's passwords.
func Store(t testing.TB, stateDir string) *secrets.Store {
	t.Helper()
	s, err := secrets.OpenStore(stateDir, filepath.Join(stateDir, "test-identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
