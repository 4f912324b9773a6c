package shop_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
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

// cacheSpec is the example's cache as nubo.yaml has it: a real Redis that
// only the catalog's two versions may reach.
const cacheSpec = `name: cache-test
services:
  catalog: {run: ./catalog, port: 8083}
  catalog-v2: {run: ./catalog, port: 8083}
databases:
  cache:
    type: redis
    storage: {persistent: false}
    security:
      network:
        ingress:
          - from: [{service: catalog}, {service: catalog-v2}]
`

// startCache runs a Redis server of its own through nubo's databases
// package and returns the CACHE_URL nubo gives the catalog, and a function
// that stops the server before the test ends. It skips when Redis is not
// installed (fails under CI=true).
func startCache(t *testing.T) (url string, stop func()) {
	t.Helper()
	d, stop := startDatabases(t, "redis", cacheSpec)
	u, err := d.Lookup("cache", "url", "catalog")
	if err != nil {
		t.Fatal(err)
	}
	return u, stop
}

// startShopDB runs a PostgreSQL server of its own through nubo's databases
// package and returns the DATABASE_URL nubo gives each of users and orders:
// its role's password, through the allow-list listener. It skips when
// PostgreSQL is not installed (fails under CI=true).
func startShopDB(t *testing.T) (usersURL, ordersURL string) {
	t.Helper()
	d, _ := startDatabases(t, "postgres", shopDBSpec)
	url := func(workload string) string {
		u, err := d.Lookup("shop-db", "url", workload)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	return url("users"), url("orders")
}

// startDatabases runs the databases of a spec, all of type typ, until the
// test ends or stop is called, and waits until they are ready.
func startDatabases(t *testing.T, typ, yaml string) (d *databases.Databases, stop func()) {
	t.Helper()
	databasestest.Require(t, typ)
	state := databasestest.StateDir(t)
	file := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err = databases.New(databases.Config{App: app, StateDir: state, Store: databasestest.Store(t, state)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := d.Stop(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	for _, name := range d.Names() {
		select {
		case <-d.Get(name).Ready():
		case <-ctx.Done():
			t.Fatalf("%s not ready: %s", name, d.Get(name).Failure())
		}
	}
	return d, stop
}
