package databases_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// notes collects the components' one-line reports.
type notes struct {
	mu    sync.Mutex
	lines []string
}

func (n *notes) add(db, msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, msg)
}

func (n *notes) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.lines, "\n")
}

func load(t *testing.T, yaml string) *spec.App {
	t.Helper()
	dir := t.TempDir()
	path := dir + "/nubo.yaml"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// run starts the databases of app in stateDir and stops them at cleanup.
func run(t *testing.T, app *spec.App, stateDir string, f databases.Finder) (*databases.Databases, *notes) {
	t.Helper()
	n := &notes{}
	return start(t, databases.Config{App: app, StateDir: stateDir, Finder: f, Notify: n.add}), n
}

// start starts databases of cfg, with the state's store and a short
// restart backoff unless cfg has them, and stops them at cleanup.
func start(t *testing.T, cfg databases.Config) *databases.Databases {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = databasestest.Store(t, cfg.StateDir)
	}
	if cfg.Backoff == (supervisor.Backoff{}) {
		cfg.Backoff = supervisor.Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	}
	d, err := databases.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, d) })
	return d
}

func stop(t *testing.T, d *databases.Databases) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Error(err)
	}
}

func ready(t *testing.T, db *databases.Database, n *notes) {
	t.Helper()
	select {
	case <-db.Ready():
	default:
		t.Fatalf("database %s not ready: %s\n%s", db.Name(), db.Failure(), n)
	}
}

func pgConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func lookup(t *testing.T, d *databases.Databases, db, attr, workload string) string {
	t.Helper()
	v, err := d.Lookup(db, attr, workload)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const pgSpec = `name: t
databases:
  main:
    type: postgres
`

// A second run of a persistent database finds the first run's rows, on
// the same port; as root, the server runs as an unprivileged user.
func TestPostgresKeepsDataAcrossRuns(t *testing.T) {
	databasestest.Require(t, "postgres")
	state := databasestest.StateDir(t)
	app := load(t, pgSpec)

	d1, n1 := run(t, app, state, databases.Finder{})
	ready(t, d1.Get("main"), n1)
	url := lookup(t, d1, "main", "url", "api")
	ctx := context.Background()
	conn := pgConnect(t, url)
	if _, err := conn.Exec(ctx, "CREATE TABLE users (name text); INSERT INTO users VALUES ('ada'), ('grace')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if os.Geteuid() == 0 {
		uid := processUID(t, d1.Get("main").Status().PID)
		if uid == 0 {
			t.Fatalf("postgres runs as root")
		}
	}
	port := d1.Get("main").Port()
	stop(t, d1)

	d2, n2 := run(t, app, state, databases.Finder{})
	ready(t, d2.Get("main"), n2)
	if got := d2.Get("main").Port(); got != port {
		t.Errorf("port %d on the second run, want the first run's %d", got, port)
	}
	if !strings.Contains(n2.String(), "ready") || strings.Contains(n2.String(), "initialized") {
		t.Errorf("second run's notes, want no initdb:\n%s", n2)
	}
	var names []string
	rows, err := pgConnect(t, lookup(t, d2, "main", "url", "api")).Query(ctx, "SELECT name FROM users ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		names = append(names, s)
	}
	if strings.Join(names, ",") != "ada,grace" {
		t.Errorf("rows after restart = %v, want ada,grace", names)
	}
}

func processUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			var uid int
			fmt.Sscan(f[1], &uid)
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return -1
}

func TestRedisPersistence(t *testing.T) {
	databasestest.Require(t, "redis")
	for _, tc := range []struct {
		persistent string
		want       string
	}{{"true", "kept"}, {"false", ""}} {
		t.Run("persistent="+tc.persistent, func(t *testing.T) {
			state := databasestest.StateDir(t)
			app := load(t, "name: t\ndatabases:\n  cache:\n    type: redis\n    storage: {persistent: "+tc.persistent+"}\n")
			ctx := context.Background()
			d1, n1 := run(t, app, state, databases.Finder{})
			ready(t, d1.Get("cache"), n1)
			opt, err := redis.ParseURL(lookup(t, d1, "cache", "url", "api"))
			if err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(opt)
			if err := c.Set(ctx, "k", "kept", 0).Err(); err != nil {
				t.Fatal(err)
			}
			c.Close()
			stop(t, d1)

			d2, n2 := run(t, app, state, databases.Finder{})
			ready(t, d2.Get("cache"), n2)
			opt, _ = redis.ParseURL(lookup(t, d2, "cache", "url", "api"))
			c = redis.NewClient(opt)
			defer c.Close()
			got, err := c.Get(ctx, "k").Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("after a restart k = %q, want %q", got, tc.want)
			}
		})
	}
}

// A server that is not installed fails its database in one line with the
// install command; Start itself succeeds, so the rest of the system runs.
func TestMissingServer(t *testing.T) {
	app := load(t, pgSpec+"  cache:\n    type: redis\n")
	d, _ := run(t, app, t.TempDir(), databases.Finder{NoSystem: true})
	for _, name := range []string{"main", "cache"} {
		st := d.Get(name).Status()
		if st.State != databases.StateFailed || !strings.Contains(st.Message, "not installed") || !strings.Contains(st.Message, "install") {
			t.Errorf("%s: state %q, message %q; want failed, naming the install command", name, st.State, st.Message)
		}
		if strings.Contains(st.Message, "\n") {
			t.Errorf("%s: message is more than one line: %q", name, st.Message)
		}
	}
}

func TestVersionMismatch(t *testing.T) {
	b := databasestest.Require(t, "postgres")
	_, err := databases.Finder{}.Find("postgres", "99")
	if err == nil || !strings.Contains(err.Error(), "postgres 99 is asked for") || !strings.Contains(err.Error(), b.Full) {
		t.Fatalf("err = %v; want it to name 99 and %s", err, b.Full)
	}
}

// kill -9 of the postmaster: the supervisor starts it again and it answers.
func TestPostgresKilledIsRestarted(t *testing.T) {
	databasestest.Require(t, "postgres")
	app := load(t, pgSpec)
	d, n := run(t, app, databasestest.StateDir(t), databases.Finder{})
	db := d.Get("main")
	ready(t, db, n)
	pid := db.Status().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	url := lookup(t, d, "main", "url", "api")
	nubotest.WaitFor(t, time.Minute, func() error {
		st := db.Status()
		if st.PID == 0 || st.PID == pid || st.Restarts < 1 {
			return fmt.Errorf("not restarted yet: pid %d, restarts %d", st.PID, st.Restarts)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "SELECT 1")
		return err
	})
}

// The readonly role's INSERT fails with a permission error, the readwrite
// role's succeeds, and each workload gets its role's URL.
func TestPostgresRoles(t *testing.T) {
	databasestest.Require(t, "postgres")
	app := load(t, pgSpec+`    security:
      access:
        roles:
          - {name: writer, grants: [readwrite], services: [api]}
          - {name: reader, grants: [readonly], services: [reports]}
          - {name: other_writer, grants: [readwrite], services: [jobs]}
services:
  api: {run: "true"}
  reports: {run: "true"}
  jobs: {run: "true"}
`)
	d, n := run(t, app, databasestest.StateDir(t), databases.Finder{})
	ready(t, d.Get("main"), n)
	ctx := context.Background()
	if u := lookup(t, d, "main", "user", "api"); u != "writer" {
		t.Fatalf("api's user = %q, want writer", u)
	}
	w := pgConnect(t, lookup(t, d, "main", "url", "api"))
	if _, err := w.Exec(ctx, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('hi')"); err != nil {
		t.Fatalf("writer: %v", err)
	}
	r := pgConnect(t, lookup(t, d, "main", "url", "reports"))
	var body string
	if err := r.QueryRow(ctx, "SELECT body FROM notes").Scan(&body); err != nil || body != "hi" {
		t.Fatalf("reader's SELECT = %q, %v; want hi (a table the writer created later)", body, err)
	}
	_, err := r.Exec(ctx, "INSERT INTO notes VALUES ('no')")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("reader's INSERT: %v; want a permission error (42501)", err)
	}
}

func TestRedisRoles(t *testing.T) {
	databasestest.Require(t, "redis")
	app := load(t, `name: t
databases:
  cache:
    type: redis
    security:
      access:
        roles:
          - {name: writer, grants: [readwrite], services: [api]}
          - {name: reader, grants: [readonly], services: [reports]}
          - {name: other_writer, grants: [readwrite], services: [jobs]}
services:
  api: {run: "true"}
  reports: {run: "true"}
  jobs: {run: "true"}
`)
	d, n := run(t, app, databasestest.StateDir(t), databases.Finder{})
	ready(t, d.Get("cache"), n)
	ctx := context.Background()
	client := func(workload string) *redis.Client {
		opt, err := redis.ParseURL(lookup(t, d, "cache", "url", workload))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		return c
	}
	if err := client("api").Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	r := client("reports")
	if v, err := r.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("reader's GET = %q, %v", v, err)
	}
	if err := r.Set(ctx, "k", "no", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("reader's SET: %v; want NOPERM", err)
	}
}

// local.databases.postgres is searched before PATH and the package
// locations.
func TestFinderSpecFolderFirst(t *testing.T) {
	b := databasestest.Require(t, "postgres")
	dir := t.TempDir()
	if err := os.Symlink(b.Path("postgres"), dir+"/postgres"); err != nil {
		t.Fatal(err)
	}
	app := load(t, "name: t\nlocal:\n  databases: {postgres: "+dir+"}\ndatabases:\n  main: {type: postgres}\n")
	got, err := databases.FinderFor(app).Find("postgres", "")
	if err != nil || got.Dir != dir {
		t.Fatalf("found %+v, %v; want the spec's folder %s", got, err, dir)
	}
}
