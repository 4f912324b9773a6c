package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	// No password in the output stream or the status document.
	status, err := json.Marshal(e1.Status())
	if err != nil {
		t.Fatal(err)
	}
	db := e1.dbs.get("main")
	writer, _ := db.RoleCredentials("writer")
	for who, pw := range map[string]string{"admin": db.Admin().Password.Reveal(), "writer": writer.Password.Reveal()} {
		if pw == "" {
			t.Fatalf("no %s password", who)
		}
		if strings.Contains(e1.out.String(), pw) || strings.Contains(string(status), pw) {
			t.Errorf("the %s password shows in the output or the status", who)
		}
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

// A monitored database's metrics, under postgres_exporter's and
// redis_exporter's names, answer PromQL, and its alert rule fires.
func TestDatabaseMetricsAndAlerts(t *testing.T) {
	databasestest.Require(t, "postgres")
	databasestest.Require(t, "redis")
	var mu sync.Mutex
	var payloads []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		payloads = append(payloads, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	dir := databasestest.StateDir(t)
	app := writeSpec(t, dir, fmt.Sprintf(`name: t
databases:
  main:
    type: postgres
    monitoring:
      enabled: true
      alerts:
        - {name: MainConnections, expr: 'sum(pg_stat_activity_count{datname="app"}) >= 0', severity: warning, channels: [hook]}
  cache:
    type: redis
    monitoring: {enabled: true}
observability:
  metrics: {interval: 200ms}
  channels:
    hook: {type: webhook, url: %s}
`, hook.URL))
	e := startEngine(t, app)
	for _, q := range []string{
		`pg_stat_activity_count{database="main",datname="app",state="active"}`,
		`pg_up{database="main"}`,
		`pg_database_size_bytes{database="main",datname="app"}`,
		`redis_up{database="cache"}`,
		`redis_connected_clients{database="cache"}`,
	} {
		nubotest.WaitFor(t, 30*time.Second, func() error {
			body := getJSON(t, e, "/api/v1/query?query="+url.QueryEscape(q))
			var res struct {
				Status string
				Data   struct{ Result []struct{ Value []any } }
			}
			if err := json.Unmarshal([]byte(body), &res); err != nil {
				return err
			}
			if res.Status != "success" || len(res.Data.Result) != 1 {
				return fmt.Errorf("%s answered %s", q, body)
			}
			if strings.HasSuffix(q, `_up{database="main"}`) || strings.HasPrefix(q, "redis_up") {
				if res.Data.Result[0].Value[1] != "1" {
					return fmt.Errorf("%s = %v, want 1", q, res.Data.Result[0].Value[1])
				}
			}
			return nil
		})
	}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range payloads {
			if strings.Contains(p, `"status":"firing"`) && strings.Contains(p, `"alertname":"MainConnections"`) {
				return nil
			}
		}
		return fmt.Errorf("no firing notification yet (%d payloads)", len(payloads))
	})
}
