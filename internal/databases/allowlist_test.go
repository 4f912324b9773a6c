package databases_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// Only the workloads security.network.ingress lists get through their
// listeners; another's connection is refused, reported and counted.
func TestAllowList(t *testing.T) {
	databasestest.Require(t, "postgres")
	reg := prometheus.NewRegistry()
	d := runWith(t, pgSpec+`    security:
      network:
        ingress:
          - from: [{service: api}]
            ports: [{port: 5432}]
services:
  api: {run: "true"}
  intruder: {run: "true"}
`, nil, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	apiURL, intruderURL := lookup(t, d, "main", "url", "api"), lookup(t, d, "main", "url", "intruder")
	direct := fmt.Sprint(d.Get("main").Port())
	if strings.Contains(apiURL, ":"+direct+"/") || apiURL == intruderURL {
		t.Fatalf("the workloads' URLs do not point at listeners of their own")
	}
	conn, err := pgx.Connect(ctx, apiURL)
	if err != nil {
		t.Fatalf("api, which is listed: %v", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("api's SELECT 1 through its listener: %v", err)
	}
	conn.Close(ctx)
	if c, err := pgx.Connect(ctx, intruderURL); err == nil {
		c.Close(ctx)
		t.Fatal("intruder, which is not listed, connected")
	}
	nubotest.WaitFor(t, 10*time.Second, func() error {
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		for _, mf := range mfs {
			if mf.GetName() != "nubo_database_connections_refused_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "workload" && l.GetValue() == "intruder" && m.GetCounter().GetValue() >= 1 {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("no refusal of intruder counted")
	})
}
