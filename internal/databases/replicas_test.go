package databases_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// A streaming replica receives a row written on the primary, answers
// readUrl as a standby, and after a kill -9 is restarted and catches up.
func TestPostgresReplica(t *testing.T) {
	databasestest.Require(t, "postgres")
	d := runWith(t, pgSpec+"    replicas: 2\n", nil, nil)
	db := d.Get("main")
	st := db.Status()
	if len(st.Replicas) != 1 || st.Replicas[0].State != databases.ReplicaStreaming {
		t.Fatalf("replicas = %+v, want one streaming", st.Replicas)
	}
	ctx := context.Background()
	primary := pgConnect(t, lookup(t, d, "main", "url", "api"))
	if _, err := primary.Exec(ctx, "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	readURL := lookup(t, d, "main", "readUrl", "api")
	count := func(want int) func() error {
		return func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			conn, err := pgx.Connect(cctx, readURL)
			if err != nil {
				return err
			}
			defer conn.Close(cctx)
			var standby bool
			var n int
			if err := conn.QueryRow(cctx, "SELECT pg_is_in_recovery(), (SELECT count(*) FROM orders)").Scan(&standby, &n); err != nil {
				return err
			}
			if !standby {
				return fmt.Errorf("readUrl reached the primary")
			}
			if n != want {
				return fmt.Errorf("the replica has %d rows, want %d", n, want)
			}
			return nil
		}
	}
	nubotest.WaitFor(t, 30*time.Second, count(1))

	pid := st.Replicas[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.Exec(ctx, "INSERT INTO orders VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	nubotest.WaitFor(t, time.Minute, func() error {
		r := db.Status().Replicas[0]
		if r.PID == pid || r.PID == 0 || r.Restarts < 1 {
			return fmt.Errorf("replica not restarted yet (pid %d, restarts %d)", r.PID, r.Restarts)
		}
		return count(2)()
	})
	if !strings.Contains(readURL, "target_session_attrs=prefer-standby") {
		t.Errorf("readUrl does not prefer standbys")
	}
	// The lag is exported under postgres_exporter's name.
	nubotest.WaitFor(t, 30*time.Second, func() error {
		rec := httptest.NewRecorder()
		db.Exporter().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if !strings.Contains(rec.Body.String(), `pg_stat_replication_pg_wal_lsn_diff{application_name=`) {
			return fmt.Errorf("no replication lag in the metrics:\n%s", rec.Body)
		}
		return nil
	})
}

// A Redis replica (replicaof) gets the primary's writes; readUrl reaches
// it, read-only; after a kill -9 it is restarted and catches up.
func TestRedisReplica(t *testing.T) {
	databasestest.Require(t, "redis")
	d := runWith(t, "name: t\ndatabases:\n  cache:\n    type: redis\n    replicas: 2\n", nil, nil)
	db := d.Get("cache")
	st := db.Status()
	if len(st.Replicas) != 1 || st.Replicas[0].State != databases.ReplicaStreaming {
		t.Fatalf("replicas = %+v, want one streaming", st.Replicas)
	}
	ctx := context.Background()
	client := func(attr string) *redis.Client {
		opt, err := redis.ParseURL(lookup(t, d, "cache", attr, "api"))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		return c
	}
	primary, reader := client("url"), client("readUrl")
	has := func(key string) func() error {
		return func() error {
			v, err := reader.Get(ctx, key).Result()
			if err != nil || v != "v" {
				return fmt.Errorf("replica's %s = %q, %v", key, v, err)
			}
			return nil
		}
	}
	if err := primary.Set(ctx, "a", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	nubotest.WaitFor(t, 30*time.Second, has("a"))
	if err := reader.Set(ctx, "x", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("a write to the replica: %v; want READONLY", err)
	}
	pid := st.Replicas[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := primary.Set(ctx, "b", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	nubotest.WaitFor(t, time.Minute, func() error {
		if r := db.Status().Replicas[0]; r.PID == pid || r.PID == 0 {
			return fmt.Errorf("replica not restarted yet")
		}
		return has("b")()
	})
}
