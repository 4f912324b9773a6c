package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// A service gets its role's URL of a real PostgreSQL, which keeps its rows
// across two runs of the engine; `nubo status` shows the database.
func TestDatabaseURLAndPersistence(t *testing.T) {
	databasestest.Require(t, "postgres")
	dir := databasestest.StateDir(t)
	app := writeSpec(t, dir, `name: t
databases:
  main:
    type: postgres
    security:
      access:
        roles:
          - {name: writer, grants: [readwrite], services: [api]}
services:
  api:
    run: printenv DB_URL > url.txt && exec sleep 600
    dependsOn: [main]
    env:
      DB_URL: ${databases.main.url}
`)
	identity := filepath.Join(dir, "identity.txt")
	withIdentity := func(o *Options) { o.IdentityPath = identity }
	readURL := func() string {
		var url string
		nubotest.WaitFor(t, 30*time.Second, func() error {
			b, err := os.ReadFile(filepath.Join(dir, "url.txt"))
			if err != nil || !strings.HasSuffix(string(b), "\n") {
				return fmt.Errorf("url.txt not written: %v", err)
			}
			url = strings.TrimSpace(string(b))
			return nil
		})
		return url
	}
	ctx := context.Background()

	e1 := startEngine(t, app, withIdentity)
	waitReady(t, e1)
	url := readURL()
	if !strings.HasPrefix(url, "postgres://writer:") {
		t.Fatalf("DB_URL does not carry the api's role: %s", strings.SplitN(url, ":", 3)[:2])
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	st := e1.Status().Databases
	if len(st) != 1 || st[0].State != databases.StateReady || st[0].PID == 0 || st[0].Port == 0 {
		t.Fatalf("status databases = %+v, want main ready with a pid and a port", st)
	}
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := e1.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "url.txt"))

	e2 := startEngine(t, app, withIdentity)
	waitReady(t, e2)
	conn, err = pgx.Connect(ctx, readURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows on the second run = %d, %v; want 2", n, err)
	}
}

// A database that cannot start fails alone: the service that depends on
// it waits and says why, the others run.
func TestDatabaseFailureKeepsTheRestRunning(t *testing.T) {
	databasestest.Require(t, "postgres")
	dir := databasestest.StateDir(t)
	app := writeSpec(t, dir, `name: t
databases:
  main:
    type: postgres
    version: "99"
services:
  api:
    run: exec sleep 600
    dependsOn: [main]
  web:
    run: exec sleep 600
`)
	e := startEngine(t, app)
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if i := indexOf(e.events(), "api waiting for main to be ready: postgres 99 is asked for"); i < 0 {
			return fmt.Errorf("no line says why api waits:\n%s", strings.Join(e.events(), "\n"))
		}
		if i := indexOf(e.events(), "web ready"); i < 0 {
			return fmt.Errorf("web is not ready")
		}
		return nil
	})
	st := e.Status()
	if st.Databases[0].State != databases.StateFailed {
		t.Errorf("main's state = %q, want failed", st.Databases[0].State)
	}
	for _, s := range st.Services {
		if s.Name == "api" && s.Ready != 0 {
			t.Errorf("api has %d ready replicas while its database has failed", s.Ready)
		}
	}
}
