package databases_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// runWith is run with the backups' secrets and a metrics registry.
func runWith(t *testing.T, yaml string, secret map[string]string, reg prometheus.Registerer) *databases.Databases {
	t.Helper()
	app := load(t, yaml)
	state := databasestest.StateDir(t)
	n := &notes{}
	d := start(t, databases.Config{
		App: app, StateDir: state, Notify: n.add, Metrics: reg,
		Secret: func(name, key string) (string, bool) {
			v, ok := secret[name+"/"+key]
			return v, ok
		},
	})
	for _, name := range d.Names() {
		ready(t, d.Get(name), n)
	}
	return d
}

func names(t *testing.T, d *databases.Databases) string {
	t.Helper()
	rows, err := pgConnect(t, lookup(t, d, "main", "url", "api")).Query(context.Background(), "SELECT name FROM users ORDER BY name")
	if err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// Backup, change the data (drop the table, add another), restore: exactly
// the backup's rows are back; retention keeps the newest backups.
func TestPostgresBackupRestore(t *testing.T) {
	databasestest.Require(t, "postgres")
	d := runWith(t, pgSpec+"    backup: {retention: 2}\n", nil, nil)
	db := d.Get("main")
	ctx := context.Background()
	conn := pgConnect(t, lookup(t, d, "main", "url", "api"))
	if _, err := conn.Exec(ctx, "CREATE TABLE users (name text); INSERT INTO users VALUES ('ada'), ('grace')"); err != nil {
		t.Fatal(err)
	}
	var last string
	for range 3 {
		b, err := db.Backup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last = b.Name
	}
	all, err := db.Backups()
	if err != nil || len(all) != 2 || all[1].Name != last {
		t.Fatalf("backups = %+v, %v; want the 2 newest, ending with %s", all, err, last)
	}
	if _, err := conn.Exec(ctx, "DROP TABLE users; CREATE TABLE later (x int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got := names(t, d); got != "ada,grace" {
		t.Errorf("rows after restore = %q, want ada,grace", got)
	}
	var later bool
	if err := pgConnect(t, lookup(t, d, "main", "url", "api")).QueryRow(ctx, "SELECT to_regclass('later') IS NOT NULL").Scan(&later); err != nil || later {
		t.Errorf("a table created after the backup survived the restore (%v)", err)
	}
	if _, err := db.Restore(ctx, "main-nosuch.pgdump"); err == nil {
		t.Error("restore of a backup that does not exist succeeded")
	}
}

// An encrypted backup is an age file that only the key opens; restore
// reads it with the key.
func TestEncryptedBackup(t *testing.T) {
	databasestest.Require(t, "postgres")
	const key = "correct horse battery staple"
	d := runWith(t, pgSpec+`    security:
      encryption: {atRest: true, key: {secret: db-key}}
secrets:
  db-key: {keys: [key]}
`, map[string]string{"db-key/key": key}, nil)
	db := d.Get("main")
	ctx := context.Background()
	conn := pgConnect(t, lookup(t, d, "main", "url", "api"))
	if _, err := conn.Exec(ctx, "CREATE TABLE users (name text); INSERT INTO users VALUES ('secret-row-marker')"); err != nil {
		t.Fatal(err)
	}
	b, err := db.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Encrypted || !strings.HasSuffix(b.Name, ".age") {
		t.Fatalf("backup %+v is not encrypted", b)
	}
	raw, err := os.ReadFile(filepath.Join(db.BackupDir(), b.Name))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("secret-row-marker")) || !bytes.HasPrefix(raw, []byte("age-encryption.org/v1")) {
		t.Fatalf("the backup file is not an age file, or holds the row in clear")
	}
	wrong, _ := age.NewScryptIdentity("wrong key")
	if _, err := age.Decrypt(bytes.NewReader(raw), wrong); err == nil {
		t.Fatal("the backup decrypts without its key")
	}
	right, _ := age.NewScryptIdentity(key)
	r, err := age.Decrypt(bytes.NewReader(raw), right)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := io.ReadAll(r); err != nil || !bytes.HasPrefix(plain, []byte("PGDMP")) {
		t.Fatalf("decrypted backup is not a pg_dump archive (%v)", err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM users"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(ctx, b.Name); err != nil {
		t.Fatal(err)
	}
	if got := names(t, d); got != "secret-row-marker" {
		t.Errorf("rows after restore = %q", got)
	}
}

func TestRedisBackupRestore(t *testing.T) {
	databasestest.Require(t, "redis")
	d := runWith(t, "name: t\ndatabases:\n  cache:\n    type: redis\n", nil, nil)
	db := d.Get("cache")
	ctx := context.Background()
	client := func() *redis.Client {
		opt, err := redis.ParseURL(lookup(t, d, "cache", "url", "api"))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := client()
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Backup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "new", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(ctx, ""); err != nil {
		t.Fatal(err)
	}
	c = client()
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "before" {
		t.Errorf("k after restore = %q, %v; want before", v, err)
	}
	if n, err := c.Exists(ctx, "new").Result(); err != nil || n != 0 {
		t.Errorf("a key written after the backup survived the restore (%d, %v)", n, err)
	}
}

// A schedule runs backups by itself and counts them.
func TestScheduledBackup(t *testing.T) {
	databasestest.Require(t, "redis")
	reg := prometheus.NewRegistry()
	d := runWith(t, "name: t\ndatabases:\n  cache:\n    type: redis\n    backup: {enabled: true, schedule: \"@every 1s\", retention: 2}\n", nil, reg)
	nubotest.WaitFor(t, 30*time.Second, func() error {
		all, err := d.Get("cache").Backups()
		if err != nil || len(all) < 2 {
			return fmt.Errorf("%d backups so far (%v)", len(all), err)
		}
		if n := counter(t, reg, "nubo_database_backups_total", "success"); n < 2 {
			return fmt.Errorf("backups counted: %v", n)
		}
		return nil
	})
}

// counter returns the value of the series of name whose result is result.
func counter(t *testing.T, g prometheus.Gatherer, name, result string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
