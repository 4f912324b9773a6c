package databases_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/supervisor"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// spanRecorder is a Tracer that keeps every span and samples every trace.
type spanRecorder struct {
	mu    sync.Mutex
	spans []tracing.Span
}

func (r *spanRecorder) Record(s tracing.Span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, s)
}

func (r *spanRecorder) Sample([16]byte) bool { return true }

func (r *spanRecorder) of(service string) []tracing.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []tracing.Span
	for _, s := range r.spans {
		if s.Service == service {
			out = append(out, s)
		}
	}
	return out
}

// A connection through the allow-list listener is a CLIENT span of the
// workload, from connect to close, with OpenTelemetry's database
// attributes and the bytes each way; a refused one is an error span.
func TestAllowListConnectionSpans(t *testing.T) {
	databasestest.Require(t, "postgres")
	app := load(t, pgSpec+`    security:
      network:
        ingress:
          - from: [{service: api}]
services:
  api: {run: "true"}
  intruder: {run: "true"}
`)
	state := databasestest.StateDir(t)
	n := &notes{}
	rec := &spanRecorder{}
	d, err := databases.New(databases.Config{App: app, StateDir: state, Store: databasestest.Store(t, state), Notify: n.add,
		Backoff: supervisor.Backoff{Base: 100 * time.Millisecond, Max: time.Second}, Tracer: rec})
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

	conn, err := pgx.Connect(ctx, lookup(t, d, "main", "url", "api"))
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if c, err := pgx.Connect(ctx, lookup(t, d, "main", "url", "intruder")); err == nil {
		c.Close(ctx)
		t.Fatal("intruder connected")
	}
	attr := func(s tracing.Span, k string) string {
		for _, a := range s.Attrs {
			if a.Key == k {
				return a.Value
			}
		}
		return ""
	}
	var api []tracing.Span
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if api = rec.of("api"); len(api) == 0 {
			return fmt.Errorf("no span of api's connection yet")
		}
		return nil
	})
	s := api[0]
	if s.Name != "connect main" || s.Kind != tracing.KindClient || s.Status != tracing.StatusUnset ||
		attr(s, "db.system.name") != "postgresql" || attr(s, "db.namespace") != "main" ||
		attr(s, "server.port") != fmt.Sprint(d.Get("main").Port()) ||
		!positive(attr(s, "nubo.database.bytes_sent")) || !positive(attr(s, "nubo.database.bytes_received")) || s.End <= s.Start {
		t.Errorf("api's connection span %+v", s)
	}
	refused := rec.of("intruder")
	if len(refused) == 0 || refused[0].Status != tracing.StatusError || attr(refused[0], "error.type") != "refused_by_allow_list" {
		t.Errorf("intruder's spans %+v", refused)
	}
}

func positive(v string) bool { return v != "" && v != "0" && v[0] != '-' }
