package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/spec"
)

// nubo db against a real engine running a real PostgreSQL: backup, list,
// restore (asks unless --yes), and a shell that runs psql as the
// superuser without the password on its command line.
func TestDBCommands(t *testing.T) {
	databasestest.Require(t, "postgres")
	dir := databasestest.StateDir(t)
	file := filepath.Join(dir, "nubo.yaml")
	if err := os.WriteFile(file, []byte("name: t\ndatabases:\n  main:\n    type: postgres\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	identity := filepath.Join(dir, "identity.txt")
	t.Setenv("NUBO_AGE_IDENTITY", identity) // the shell reads the store as the engine wrote it
	app, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(app, engine.Options{ConsoleAddr: "127.0.0.1:0", IdentityPath: identity, NoWatch: true, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	addr := e.Status().Console
	// With --addr the CLI knows no state directory: the token comes from
	// the environment, as docs/console.md tells users.
	t.Setenv(console.TokenEnv, e.ConsoleToken())

	// The rows, written as the superuser through the shell.
	run := func(stdin string, args ...string) result {
		var stdout, stderr bytes.Buffer
		code := Run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
		return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}
	r := run("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2); SELECT sum(v) AS total FROM t;\n", "-f", file, "db", "shell", "main", "--addr", addr)
	if r.code != 0 || !strings.Contains(r.stdout, "3") {
		t.Fatalf("db shell:\n%s", r)
	}

	r = runInProcess(t, "db", "backup", "main", "--addr", addr)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "backed up main to main-") {
		t.Fatalf("db backup:\n%s", r)
	}
	r = runInProcess(t, "db", "backups", "main", "--addr", addr)
	if r.code != 0 || !strings.Contains(r.stdout, ".pgdump") {
		t.Fatalf("db backups:\n%s", r)
	}
	r = runInProcess(t, "db", "list", "--addr", addr)
	if r.code != 0 || !strings.Contains(r.stdout, "main") || !strings.Contains(r.stdout, "ready") {
		t.Fatalf("db list:\n%s", r)
	}

	r = run("DELETE FROM t;\n", "-f", file, "db", "shell", "main", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("db shell:\n%s", r)
	}
	if r = runInProcess(t, "db", "restore", "main", "--addr", addr); r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("db restore without a terminal or --yes:\n%s", r)
	}
	if r = runInProcess(t, "db", "restore", "main", "--yes", "--addr", addr); r.code != 0 {
		t.Fatalf("db restore --yes:\n%s", r)
	}
	r = run("SELECT count(*) AS n FROM t;\n", "-f", file, "db", "shell", "main", "--addr", addr)
	if r.code != 0 || !strings.Contains(r.stdout, "2") {
		t.Fatalf("rows after restore:\n%s", r)
	}
	if r = runInProcess(t, "db", "backup", "nosuch", "--addr", addr); r.code == 0 || !strings.Contains(r.stderr, `no database "nosuch"`) {
		t.Fatalf("db backup of an unknown database:\n%s", r)
	}
}
