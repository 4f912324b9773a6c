package databases_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/tracing"
	"github.com/nubo-dev/nubo/internal/tracing/tracingtest"
)

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
	rec := &tracingtest.Recorder{}
	d := start(t, databases.Config{App: app, StateDir: state, Notify: n.add, Tracer: rec})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	var api []tracing.Span
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if api = rec.Of("api"); len(api) == 0 {
			return fmt.Errorf("no span of api's connection yet")
		}
		return nil
	})
	s := api[0]
	if s.Name != "connect main" || s.Kind != tracing.KindClient || s.Status != tracing.StatusUnset ||
		tracingtest.Attr(s, "db.system.name") != "postgresql" || tracingtest.Attr(s, "db.namespace") != "main" ||
		tracingtest.Attr(s, "server.port") != fmt.Sprint(d.Get("main").Port()) ||
		!positive(tracingtest.Attr(s, "nubo.database.bytes_sent")) || !positive(tracingtest.Attr(s, "nubo.database.bytes_received")) || s.End <= s.Start {
		t.Errorf("api's connection span %+v", s)
	}
	refused := rec.Of("intruder")
	if len(refused) == 0 || refused[0].Status != tracing.StatusError || tracingtest.Attr(refused[0], "error.type") != "refused_by_allow_list" {
		t.Errorf("intruder's spans %+v", refused)
	}
}

func positive(v string) bool { return v != "" && v != "0" && v[0] != '-' }
