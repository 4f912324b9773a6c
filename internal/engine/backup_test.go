package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/backup"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// acked records what the load was told is stored, and when.
type acked struct {
	mu    sync.Mutex
	items map[string]time.Time // id -> when it was acknowledged
}

func (a *acked) add(id string) {
	a.mu.Lock()
	a.items[id] = time.Now()
	a.mu.Unlock()
}

// before returns the ids acknowledged before t.
func (a *acked) before(t time.Time) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id, at := range a.items {
		if at.Before(t) {
			out = append(out, id)
		}
	}
	return out
}

// A backup taken while events are published, the event store appended to,
// rows inserted, Redis keys set and metrics scraped, restored into another
// state directory, starts an engine that holds every event, append, row,
// key and sample acknowledged before the manifest's snapshot time. A second restore into
// the same folder is refused.
func TestBackupUnderLoadRestores(t *testing.T) {
	databasestest.Require(t, "postgres")
	databasestest.Require(t, "redis")
	dir := databasestest.StateDir(t)
	app := writeSpec(t, dir, `name: bk
queues:
  orders: {}
eventStore: {}
databases:
  main:
    type: postgres
  cache:
    type: redis
observability:
  metrics: {interval: 200ms}
`)
	identity := filepath.Join(dir, "identity.txt")
	withIdentity := func(o *Options) { o.IdentityPath = identity }
	e1 := startEngine(t, app, withIdentity)
	db, cache := e1.dbs.get("main"), e1.dbs.get("cache")
	for _, d := range []*databases.Database{db, cache} {
		select {
		case <-d.Ready():
		case <-time.After(time.Minute):
			t.Fatalf("database %s not ready: %s\n%s", d.Name(), d.Failure(), e1.out)
		}
	}
	redisOf := func(d *databases.Database) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", d.Port()), Username: d.Admin().User, Password: d.Admin().Password.Reveal()})
		t.Cleanup(func() { c.Close() })
		return c
	}
	rc := redisOf(cache)
	ctx := context.Background()
	pgURL := func(port int) string {
		return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/app?sslmode=disable", db.Admin().User, url.QueryEscape(db.Admin().Password.Reveal()), port)
	}
	conn, err := pgx.Connect(ctx, pgURL(db.Port()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE orders (id text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	base := "http://" + e1.admin.Addr()

	events, appends, rows, keys := &acked{items: map[string]time.Time{}}, &acked{items: map[string]time.Time{}}, &acked{items: map[string]time.Time{}}, &acked{items: map[string]time.Time{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var load sync.WaitGroup
	loadErr := make(chan error, 4)
	run := func(what string, step func(i int) error) {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := 0; loadCtx.Err() == nil; i++ {
				if err := step(i); err != nil && loadCtx.Err() == nil {
					loadErr <- fmt.Errorf("%s %d: %w", what, i, err)
					return
				}
			}
		}()
	}
	run("publish", func(i int) error {
		id := fmt.Sprintf("evt-%d", i)
		req, _ := http.NewRequestWithContext(loadCtx, http.MethodPost, base+"/v1/queues/orders", strings.NewReader(`{"n":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("ce-id", id)
		req.Header.Set("ce-type", "order.placed")
		req.Header.Set("ce-source", "test")
		req.Header.Set("ce-specversion", "1.0")
		if err := post(req, http.StatusAccepted); err != nil {
			return err
		}
		events.add(id)
		return nil
	})
	run("append", func(i int) error {
		id := fmt.Sprintf("es-%d", i)
		body := fmt.Sprintf(`{"expectedVersion":"any","events":[{"id":%q,"type":"deposited","data":{"n":%d}}]}`, id, i)
		req, _ := http.NewRequestWithContext(loadCtx, http.MethodPost, base+"/v1/eventstore/streams/acct-1", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if err := post(req, http.StatusCreated); err != nil {
			return err
		}
		appends.add(id)
		return nil
	})
	run("insert", func(i int) error {
		id := fmt.Sprintf("row-%d", i)
		if _, err := conn.Exec(loadCtx, "INSERT INTO orders VALUES ($1)", id); err != nil {
			return err
		}
		rows.add(id)
		return nil
	})
	run("set", func(i int) error {
		id := fmt.Sprintf("key-%d", i)
		if err := rc.Set(loadCtx, id, i, 0).Err(); err != nil {
			return err
		}
		keys.add(id)
		return nil
	})
	// Some load before the backup, some during, some after.
	nubotest.WaitFor(t, time.Minute, func() error {
		if n := len(rows.before(time.Now())); n < 50 {
			return fmt.Errorf("%d rows so far", n)
		}
		return nil
	})
	req, _ := http.NewRequest(http.MethodPost, base+"/admin/v1/backup", nil)
	req.Header.Set(audit.ActorHeader, "cli:test")
	req.Header.Set(console.TokenHeader, e1.ConsoleToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %d, %v: %s", resp.StatusCode, err, archive)
	}
	time.Sleep(300 * time.Millisecond) // load after the snapshot, which it must not hold
	stopLoad()
	load.Wait()
	conn.Close(ctx)
	select {
	case err := <-loadErr:
		t.Fatal(err)
	default:
	}
	m, err := backup.Verify(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("archive: %d bytes, %d parts, taken in %s under load", len(archive), len(m.Parts), m.Finished.Sub(m.Time).Round(time.Millisecond))
	parts := map[string]bool{}
	for _, p := range m.Parts {
		parts[p.Name] = true
	}
	for _, want := range []string{"broker", "metrics", "database:main", "database:cache", "files"} {
		if !parts[want] {
			t.Errorf("the manifest has no part %s: %+v", want, m.Parts)
		}
	}
	// Samples: what engine 1 holds up to the snapshot time, less a margin
	// of two scrape intervals for a scrape stamped before it and appended
	// after the TSDB snapshot.
	sampleAt := m.Time.Add(-400 * time.Millisecond)
	samples1 := sampleCounts(t, e1, sampleAt)
	if len(samples1) == 0 {
		t.Fatal("engine 1 holds no samples before the snapshot")
	}
	recs, err := audit.Open(app.StatePath()).Read(audit.Query{Action: "backup"})
	if err != nil || len(recs) != 1 || recs[0].Actor != "cli:test" || recs[0].Result != audit.OK {
		t.Fatalf("backup audit records = %+v, %v; want one by cli:test, ok", recs, err)
	}
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := e1.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}

	other := databasestest.StateDir(t)
	if _, err := backup.Restore(bytes.NewReader(archive), other, false); err != nil {
		t.Fatal(err)
	}
	_, err = backup.Restore(bytes.NewReader(archive), other, false)
	var exists *backup.ExistingDataError
	if !errors.As(err, &exists) || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("a second restore into %s: %v, want a refusal that names --yes", other, err)
	}

	e2 := startEngine(t, app, withIdentity, func(o *Options) { o.StateDir = other })
	db2 := e2.dbs.get("main")
	select {
	case <-db2.Ready():
	case <-time.After(2 * time.Minute):
		t.Fatalf("restored database not ready: %s\n%s", db2.Failure(), e2.out)
	}
	base2 := "http://" + e2.admin.Addr()

	// Every event acknowledged before the snapshot is in the queue.
	gotEvents := map[string]bool{}
	js := e2.broker.b.JetStream()
	st, err := js.Stream(ctx, "nubo_bk_queue_orders")
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo().State
	for seq := info.FirstSeq; seq <= info.LastSeq && info.Msgs > 0; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // a gap
		}
		gotEvents[msg.Header.Get("ce-id")] = true
	}
	checkAll(t, "event", events.before(m.Time), gotEvents)

	gotAppends := map[string]bool{}
	for from := int64(0); ; {
		var page apitype.ReadResponse
		body := getJSONAt(t, base2, fmt.Sprintf("/v1/eventstore/streams/acct-1?from=%d&limit=1000", from))
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			gotAppends[ev.ID] = true
		}
		if page.Next == nil || len(page.Events) == 0 {
			break
		}
		from = *page.Next
	}
	checkAll(t, "event-store append", appends.before(m.Time), gotAppends)

	conn2, err := pgx.Connect(ctx, pgURL(db2.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	gotRows := map[string]bool{}
	r, err := conn2.Query(ctx, "SELECT id FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id string
		if err := r.Scan(&id); err != nil {
			t.Fatal(err)
		}
		gotRows[id] = true
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	checkAll(t, "row", rows.before(m.Time), gotRows)

	cache2 := e2.dbs.get("cache")
	select {
	case <-cache2.Ready():
	case <-time.After(time.Minute):
		t.Fatalf("restored cache not ready: %s\n%s", cache2.Failure(), e2.out)
	}
	gotKeys := map[string]bool{}
	all, err := redisOf(cache2).Keys(ctx, "key-*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		gotKeys[k] = true
	}
	checkAll(t, "Redis key", keys.before(m.Time), gotKeys)

	samples2 := sampleCounts(t, e2, sampleAt)
	for series, n := range samples1 {
		if samples2[series] != n {
			t.Errorf("series %s: %v samples up to the snapshot after the restore, %v before", series, samples2[series], n)
		}
	}
	// What came after the snapshot is not there: the archive is of one time.
	if after := len(rows.items) - len(rows.before(m.Finished)); after == 0 {
		t.Log("no row was inserted after the backup finished")
	} else if len(gotRows) >= len(rows.items) {
		t.Errorf("the restored database holds %d rows, all %d inserted: the rows after the backup too", len(gotRows), len(rows.items))
	}
	recs, err = audit.Open(other).Read(audit.Query{Action: "backup"})
	if err != nil || len(recs) != 0 {
		t.Errorf("the restored audit trail holds %d backup records (%v): the backup's record was written after its copy", len(recs), err)
	}
	t.Logf("restored %d events, %d appends, %d rows, %d keys, %d series; acknowledged before the snapshot: %d, %d, %d, %d",
		len(gotEvents), len(gotAppends), len(gotRows), len(gotKeys), len(samples2), len(events.before(m.Time)), len(appends.before(m.Time)), len(rows.before(m.Time)), len(keys.before(m.Time)))
}

// post sends req and wants status.
func post(req *http.Request, status int) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	return nil
}

func getJSONAt(t *testing.T, base, path string) string {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// checkAll fails for every id in want that got lacks.
func checkAll(t *testing.T, what string, want []string, got map[string]bool) {
	t.Helper()
	if len(want) == 0 {
		t.Errorf("no %s was acknowledged before the snapshot: the load did not run", what)
	}
	missing := 0
	for _, id := range want {
		if !got[id] {
			missing++
			if missing <= 5 {
				t.Errorf("%s %s was acknowledged before the snapshot and is not restored", what, id)
			}
		}
	}
	if missing > 5 {
		t.Errorf("... %d %ss missing in all, of %d", missing, what, len(want))
	}
}

// sampleCounts counts, for every series of the engine's own scrape, its
// samples in the hour up to ts in the engine's store.
func sampleCounts(t *testing.T, e *testEngine, ts time.Time) map[string]float64 {
	t.Helper()
	ctx := context.Background()
	names, err := e.obs.metrics.Query(ctx, `group by (__name__) ({job="nubo"})`, ts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, n := range names {
		name := n.Metric.Get("__name__")
		v, err := e.obs.metrics.Query(ctx, fmt.Sprintf(`count_over_time(%s{job="nubo"}[1h])`, name), ts)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range v {
			out[name+s.Metric.String()] = s.F
		}
	}
	return out
}
