package databases_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// With inTransit, the URL asks for verify-full against the local CA, the
// connection is TLS, and a connection without TLS is refused.
func TestPostgresTLS(t *testing.T) {
	databasestest.Require(t, "postgres")
	app := load(t, pgSpec+"    security:\n      encryption: {inTransit: true}\n")
	state := databasestest.StateDir(t)
	n := &notes{}
	d, err := databases.New(databases.Config{
		App: app, StateDir: state, Store: databasestest.Store(t, state), Notify: n.add, CADir: filepath.Join(state, "ca"),
		Backoff: supervisor.Backoff{Base: 100 * time.Millisecond, Max: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, d) })
	ready(t, d.Get("main"), n)
	url := lookup(t, d, "main", "url", "api")
	if !strings.Contains(url, "sslmode=verify-full") || !strings.Contains(url, "sslrootcert=") {
		t.Fatalf("the URL does not ask for verify-full against the local CA")
	}
	conn := pgConnect(t, url)
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("the connection is not TLS (%v)", err)
	}
	plain := url[:strings.Index(url, "?")] + "?sslmode=disable"
	if c, err := pgx.Connect(ctx, plain); err == nil {
		c.Close(ctx)
		t.Fatal("a connection without TLS was accepted")
	}
}
