package shop_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/databases/databasestest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// shopDBSpec is shop-db as nubo.yaml has it, less what needs the rest of the
// system (backups, the encryption key, the local CA): a real PostgreSQL, the
// services' own roles and the allow-list listener in front of it.
const shopDBSpec = `name: shop-db-test
services:
  users: {run: ./users, port: 8081}
  orders: {run: ./orders, port: 8082}
databases:
  shop-db:
    type: postgres
    storage: {persistent: false}
    security:
      access:
        rbac: true
        roles:
          - {name: users_rw, grants: [readwrite], services: [users]}
          - {name: orders_rw, grants: [readwrite], services: [orders]}
      network:
        ingress:
          - from: [{service: users}, {service: orders}]
`

// startShopDB runs a PostgreSQL server of its own through nubo's databases
// package and returns the DATABASE_URL nubo gives each of users and orders:
// its role's password, through the allow-list listener. It skips when
// PostgreSQL is not installed (fails under CI=true).
func startShopDB(t *testing.T) (usersURL, ordersURL string) {
	t.Helper()
	databasestest.Require(t, "postgres")
	state := databasestest.StateDir(t)
	file := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(file, []byte(shopDBSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := databases.New(databases.Config{App: app, StateDir: state, Store: databasestest.Store(t, state)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	select {
	case <-d.Get("shop-db").Ready():
	case <-ctx.Done():
		t.Fatalf("shop-db not ready: %s", d.Get("shop-db").Failure())
	}
	url := func(workload string) string {
		u, err := d.Lookup("shop-db", "url", workload)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	return url("users"), url("orders")
}
