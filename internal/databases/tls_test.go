package databases_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
)

// With inTransit, the URL asks for verify-full against the local CA, the
// connection is TLS, and a connection without TLS is refused.
func TestPostgresTLS(t *testing.T) {
	databasestest.Require(t, "postgres")
	app := load(t, pgSpec+"    security:\n      encryption: {inTransit: true}\n")
	state := databasestest.StateDir(t)
	n := &notes{}
	d := start(t, databases.Config{App: app, StateDir: state, Notify: n.add, CADir: filepath.Join(state, "ca")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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

// Redis with inTransit serves TLS only: a rediss:// client that trusts the
// local CA gets in, a plain one does not.
func TestRedisTLS(t *testing.T) {
	databasestest.Require(t, "redis")
	app := load(t, "name: t\ndatabases:\n  cache:\n    type: redis\n    replicas: 2\n    security:\n      encryption: {inTransit: true}\n")
	state := databasestest.StateDir(t)
	n := &notes{}
	caDir := filepath.Join(state, "ca")
	d := start(t, databases.Config{App: app, StateDir: state, Notify: n.add, CADir: caDir})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready(t, d.Get("cache"), n)
	u := lookup(t, d, "cache", "url", "api")
	if !strings.HasPrefix(u, "rediss://") {
		t.Fatalf("the URL is not rediss://")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(caDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	opt.TLSConfig.RootCAs = pool
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("a client trusting the local CA: %v", err)
	}
	// The replica replicates over TLS too.
	if st := d.Get("cache").Status(); len(st.Replicas) != 1 || st.Replicas[0].State != databases.ReplicaStreaming {
		t.Fatalf("replica over TLS: %+v", st.Replicas)
	}
	// nubo's own clients (redis-cli for backups) verify the CA too.
	if _, err := d.Get("cache").Backup(ctx); err != nil {
		t.Fatalf("backup over TLS: %v", err)
	}
	plainOpt := *opt
	plainOpt.TLSConfig = nil
	plainOpt.MaxRetries = -1
	plain := redis.NewClient(&plainOpt)
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plain connection was answered")
	}
}
