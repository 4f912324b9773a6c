package shop_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

type user struct {
	ID         string `json:"id"`
	Email      string `json:"email"`
	Name       string `json:"name"`
	Orders     int    `json:"orders"`
	SpentCents int64  `json:"spentCents"`
}

// testUsers checks the users service on its store: memory when databaseURL
// is empty, shop-db otherwise, where a second replica sees what the first
// wrote.
func testUsers(t *testing.T, app *spec.App, bins, databaseURL string) {
	pl := newPlatform(t)
	env := []string{"NUBO_API=" + pl.url}
	if databaseURL != "" {
		env = append(env, "DATABASE_URL="+databaseURL)
	}
	users := start(t, filepath.Join(bins, "users"), env...)
	wantStore := "memory"
	if databaseURL != "" {
		wantStore = "postgres"
	}
	if rs := users.logRecords("listening"); len(rs) != 1 || rs[0]["store"] != wantStore {
		t.Errorf("users' listening record %v, want store %s", rs, wantStore)
	}

	var u user
	r := call(t, "POST", users.url+"/users", nil, `{"email":"Ada@shop.localhost","name":"Ada"}`)
	r.want(t, http.StatusCreated, &u)
	if u.ID != "1" || u.Email != "ada@shop.localhost" || u.Name != "Ada" {
		t.Errorf("created %+v, want user 1, ada@shop.localhost, Ada", u)
	}
	if loc := r.header.Get("Location"); loc != "/users/1" {
		t.Errorf("Location = %q, want /users/1", loc)
	}
	if e := pl.published(t, app, "com.shop.user.created"); e.Subject != "user-1" {
		t.Errorf("user.created subject = %q, want user-1, a stream the snapshot's user-* matches", e.Subject)
	}

	for _, tc := range []struct{ body, err string }{
		{`{"email":"ada@shop.localhost"}`, "already used by user 1"},
		{`{"email":"not-an-address"}`, "invalid email"},
		{`{"email":"Ada <x@shop.localhost>"}`, "invalid email"},
		{`{"email":"x@shop.localhost","admin":true}`, "unknown field"},
	} {
		status := http.StatusBadRequest
		if strings.Contains(tc.err, "already") {
			status = http.StatusConflict
		}
		call(t, "POST", users.url+"/users", nil, tc.body).wantError(t, status, tc.err)
	}
	pl.none(t)

	call(t, "GET", users.url+"/users/1", nil, "").want(t, http.StatusOK, &u)
	call(t, "GET", users.url+"/users/42", nil, "").wantError(t, http.StatusNotFound, "user 42 not found")
	var list []user
	call(t, "GET", users.url+"/users", nil, "").want(t, http.StatusOK, &list)
	if len(list) != 1 {
		t.Errorf("GET /users listed %d users, want 1", len(list))
	}

	// The event store delivers the customer-stats projection's events in
	// batches: a JSON array of structured CloudEvents.
	batch := `[
		{"specversion":"1.0","id":"e1","source":"orders","type":"com.shop.order.placed","subject":"order-1001",
		 "data":{"orderId":"1001","userId":"1","items":[{"productId":"p-100","quantity":1,"priceCents":2490}],"totalCents":2490,"currency":"EUR"}},
		{"specversion":"1.0","id":"e2","source":"orders","type":"com.shop.order.placed","subject":"order-1002",
		 "data":{"orderId":"1002","userId":"77","items":[{"productId":"p-100","quantity":1,"priceCents":2490}],"totalCents":2490,"currency":"EUR"}}]`
	var applied map[string]int
	call(t, "POST", users.url+"/projections/customer-stats", nil, batch).want(t, http.StatusOK, &applied)
	if applied["applied"] != 1 || applied["skipped"] != 1 {
		t.Errorf("projection answered %v, want 1 applied (user 1) and 1 skipped (unknown user 77)", applied)
	}
	call(t, "GET", users.url+"/users/1", nil, "").want(t, http.StatusOK, &u)
	if u.Orders != 1 || u.SpentCents != 2490 {
		t.Errorf("after the projection user 1 has %d orders and %d cents spent, want 1 and 2490", u.Orders, u.SpentCents)
	}
	// The event store redelivers from its checkpoint after a crash: the
	// same events change nothing a second time.
	call(t, "POST", users.url+"/projections/customer-stats", nil, batch).want(t, http.StatusOK, &applied)
	if applied["applied"] != 0 || applied["skipped"] != 2 {
		t.Errorf("the same batch again answered %v, want 0 applied and 2 skipped", applied)
	}
	call(t, "GET", users.url+"/users/1", nil, "").want(t, http.StatusOK, &u)
	if u.Orders != 1 || u.SpentCents != 2490 {
		t.Errorf("after a redelivery user 1 has %d orders and %d cents spent, want still 1 and 2490", u.Orders, u.SpentCents)
	}
	if databaseURL != "" {
		// nubo.yaml runs two replicas: the second answers for the first's
		// account, and refuses its email.
		second := start(t, filepath.Join(bins, "users"), env...)
		var v user
		call(t, "GET", second.url+"/users/1", nil, "").want(t, http.StatusOK, &v)
		if v != u {
			t.Errorf("the second replica has user 1 as %+v, want %+v", v, u)
		}
		call(t, "POST", second.url+"/users", nil, `{"email":"ada@shop.localhost"}`).wantError(t, http.StatusConflict, "already used by user 1")
	}

	call(t, "POST", users.url+"/snapshot", map[string]string{"ce-subject": "user-1"}, "").want(t, http.StatusOK, &u)
	if u.Email != "ada@shop.localhost" {
		t.Errorf("snapshot of user-1 = %+v", u)
	}
	call(t, "POST", users.url+"/snapshot?stream=user-9", nil, "").wantError(t, http.StatusNotFound, "user 9")
	call(t, "POST", users.url+"/snapshot?stream=order-1", nil, "").wantError(t, http.StatusBadRequest, "not a user-ID stream")

	testAccountHistory(t, app, pl, users)

	checkAccessLog(t, app, users, "POST", "/users", "201")
	if code := users.stop(t); code != 0 {
		t.Errorf("users exited with %d after SIGTERM, want 0", code)
	}
	if len(users.logRecords("stopped")) != 1 {
		t.Errorf("users logged no \"stopped\" record after SIGTERM")
	}
}

// checkAccessLog checks that every line a program wrote to stdout is matched
// by the spec's access log parser, and that one of them records the request.
func checkAccessLog(t *testing.T, app *spec.App, p *proc, method, path, status string) {
	t.Helper()
	var pattern string
	for _, lp := range app.Observability.Logs.Parsers {
		if lp.Name == "access" {
			pattern = lp.Pattern
		}
	}
	re, err := regexp.Compile(pattern)
	if err != nil || pattern == "" {
		t.Fatalf("the spec has no usable access log parser: %q: %v", pattern, err)
	}
	found := false
	for _, line := range p.lines(&p.stdout) {
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("access line %q does not match the spec's parser %s", line, pattern)
			continue
		}
		got := map[string]string{}
		for i, name := range re.SubexpNames() {
			got[name] = m[i]
		}
		if got["method"] == method && got["path"] == path && got["status"] == status {
			found = true
		}
	}
	if !found {
		t.Errorf("no access line for %s %s %s in:\n%s", method, path, status, strings.Join(p.lines(&p.stdout), "\n"))
	}
}

// meshProxy stands in for the mesh proxy nubo points HTTP_PROXY at: it
// forwards requests for a service's name to that service and records the
// names asked for.
type meshProxy struct {
	url  string
	mu   sync.Mutex
	seen []string
}

func newMeshProxy(t *testing.T, backends map[string]string) *meshProxy {
	mp := &meshProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target, ok := backends[r.URL.Hostname()]
		if !ok {
			http.Error(w, fmt.Sprintf("no service %q", r.URL.Host), http.StatusBadGateway)
			return
		}
		mp.mu.Lock()
		mp.seen = append(mp.seen, r.URL.Hostname())
		mp.mu.Unlock()
		u, _ := url.Parse(target)
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }}).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	mp.url = srv.URL
	return mp
}

type order struct {
	ID          string `json:"id"`
	UserID      string `json:"userId"`
	TotalCents  int64  `json:"totalCents"`
	Currency    string `json:"currency"`
	Status      string `json:"status"`
	PaymentMode string `json:"paymentMode"`
	ChargeID    string `json:"chargeId"`
}

// testAccountHistory checks that accounts are event-sourced: a rename is
// appended to the account's stream at the version it was loaded at (a
// concurrent writer makes it 409), a customer may change only their own
// account, the snapshot folds the stream, and a signup whose history cannot
// be started is taken back. User 1 (ada) exists.
func testAccountHistory(t *testing.T, app *spec.App, pl *platform, users *proc) {
	ctx := context.Background()
	var u user
	call(t, "PATCH", users.url+"/users/1", map[string]string{"Nubo-Principal": "1"}, `{"name":"Ada L."}`).want(t, http.StatusOK, &u)
	if u.Name != "Ada L." || u.Email != "ada@shop.localhost" || u.Orders != 1 {
		t.Errorf("after the rename user 1 is %+v", u)
	}
	evs, _, err := pl.store.ReadStream(ctx, "user-1", 0, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Type != "com.shop.user.created" || evs[1].Type != "com.shop.user.renamed" {
		t.Fatalf("stream user-1 holds %v, want created then renamed", evs)
	}
	call(t, "POST", users.url+"/snapshot", map[string]string{"ce-subject": "user-1"}, "").want(t, http.StatusOK, &u)
	if u.Name != "Ada L." {
		t.Errorf("the snapshot of user-1 has the name %q, want the renamed Ada L.", u.Name)
	}
	call(t, "PATCH", users.url+"/users/1", map[string]string{"Nubo-Principal": "2"}, `{"name":"Mallory"}`).
		wantError(t, http.StatusForbidden, "user 2 may not change user 1")
	call(t, "PATCH", users.url+"/users/404", nil, `{"name":"Nobody"}`).wantError(t, http.StatusNotFound, "user 404 not found")

	// Another writer appends to user-1 between the load and the append.
	other := func() {
		if _, err := pl.store.Append(ctx, "user-1", apitype.ExpectAny, []apitype.EventData{{ID: "other-writer", Type: "com.shop.user.renamed", Data: []byte(`{"name":"Ada Lovelace"}`)}}); err != nil {
			t.Error(err)
		}
	}
	pl.beforeAppend.Store(&other)
	call(t, "PATCH", users.url+"/users/1", nil, `{"name":"Ada B."}`).wantError(t, http.StatusConflict, "changed meanwhile (now at version 2)")
	call(t, "POST", users.url+"/snapshot?stream=user-1", nil, "").want(t, http.StatusOK, &u)
	if u.Name != "Ada Lovelace" {
		t.Errorf("after the conflict user-1 folds to the name %q, want the other writer's Ada Lovelace", u.Name)
	}

	// A signup whose stream cannot be started is taken back, whole.
	pl.storeFailing.Store(true)
	call(t, "POST", users.url+"/users", nil, `{"email":"grace@shop.localhost"}`).wantError(t, http.StatusServiceUnavailable, "signup failed")
	pl.storeFailing.Store(false)
	pl.none(t)
	var list []user
	call(t, "GET", users.url+"/users", nil, "").want(t, http.StatusOK, &list)
	if len(list) != 1 {
		t.Errorf("after a signup without history GET /users lists %d users, want 1", len(list))
	}
	call(t, "POST", users.url+"/users", nil, `{"email":"grace@shop.localhost"}`).want(t, http.StatusCreated, &u)
	pl.published(t, app, "com.shop.user.created")
}

// testOrders checks the orders service on its store: memory when
// databaseURL is empty, shop-db otherwise, where a second replica sees what
// the first wrote.
func testOrders(t *testing.T, app *spec.App, bins, databaseURL string) {
	pl := newPlatform(t)
	users := start(t, filepath.Join(bins, "users"), "NUBO_API="+pl.url)
	catalog := start(t, filepath.Join(bins, "catalog"), "CURRENCY=EUR")
	mesh := newMeshProxy(t, map[string]string{"users": users.url, "catalog": catalog.url})
	// No USERS_URL or CATALOG_URL: orders calls http://users and
	// http://catalog by name, as nubo.yaml has it, through HTTP_PROXY.
	env := []string{"NUBO_API=" + pl.url, "HTTP_PROXY=" + mesh.url, "MAX_ITEMS_PER_ORDER=5", "PAYMENTS_API_KEY=live_0123"}
	if databaseURL != "" {
		env = append(env, "DATABASE_URL="+databaseURL)
	}
	orders := start(t, filepath.Join(bins, "orders"), env...)

	call(t, "POST", users.url+"/users", nil, `{"email":"bob@shop.localhost"}`).want(t, http.StatusCreated, nil)
	pl.published(t, app, "com.shop.user.created")

	body := `{"userId":"1","items":[{"productId":"p-100","quantity":2},{"productId":"p-200","quantity":1}]}`
	key := map[string]string{"Idempotency-Key": "k-1"}
	var o order
	r := call(t, "POST", orders.url+"/orders", key, body)
	r.want(t, http.StatusCreated, &o)
	want := order{ID: "1001", UserID: "1", TotalCents: 2*2490 + 7900, Currency: "EUR", Status: "placed", PaymentMode: "live"}
	if o != want {
		t.Errorf("order = %+v, want %+v", o, want)
	}
	if e := pl.published(t, app, "com.shop.order.placed"); e.Subject != "order-1001" {
		t.Errorf("order.placed subject = %q, want order-1001, a stream the customer-stats projection reads", e.Subject)
	}
	mesh.mu.Lock()
	seen := slices.Compact(slices.Sorted(slices.Values(mesh.seen)))
	mesh.mu.Unlock()
	if !slices.Equal(seen, []string{"catalog", "users"}) {
		t.Errorf("orders asked the mesh for %v, want catalog and users", seen)
	}

	call(t, "POST", orders.url+"/orders", key, body).want(t, http.StatusOK, &o)
	if o.ID != "1001" {
		t.Errorf("a retried request with the same Idempotency-Key made order %s, want 1001 again", o.ID)
	}
	pl.none(t)

	for _, tc := range []struct {
		body   string
		status int
		err    string
	}{
		{`{"userId":"99","items":[{"productId":"p-100","quantity":1}]}`, http.StatusUnprocessableEntity, "user 99: not found"},
		{`{"userId":"1","items":[{"productId":"p-999","quantity":1}]}`, http.StatusUnprocessableEntity, "product p-999: not found"},
		{`{"userId":"1","items":[{"productId":"p-100","quantity":6}]}`, http.StatusBadRequest, "1 to 5 items"},
		{`{"userId":"1","items":[]}`, http.StatusBadRequest, "1 to 5 items"},
		{`{"userId":"1","items":[{"productId":"p-100","quantity":0}]}`, http.StatusBadRequest, "invalid quantity"},
	} {
		call(t, "POST", orders.url+"/orders", nil, tc.body).wantError(t, tc.status, tc.err)
	}
	pl.none(t)

	// order-processor's answer comes back through the order-events topic.
	var paid map[string]int
	processed := `{"orderId":"1001","chargeId":"ch_live_1001","totalCents":12880,"payment":"live"}`
	call(t, "POST", orders.url+"/events", binaryEvent("e1", "com.shop.order.processed", "order-processor", "order-1001"), processed).
		want(t, http.StatusOK, &paid)
	if paid["paid"] != 1 {
		t.Errorf("POST /events answered %v, want 1 paid", paid)
	}
	r = call(t, "GET", orders.url+"/orders/1001", nil, "")
	r.want(t, http.StatusOK, &o)
	if o.Status != "paid" || o.ChargeID != "ch_live_1001" {
		t.Errorf("after com.shop.order.processed order 1001 is %q with charge %q, want paid, ch_live_1001", o.Status, o.ChargeID)
	}
	// Its status changes, so the gateway's cache must not keep it.
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET /orders/1001: Cache-Control %q, want no-store", cc)
	}
	if databaseURL != "" {
		// A second replica answers for the first one's order, and a
		// request retried on it with the same key gets the same order.
		second := start(t, filepath.Join(bins, "orders"), env...)
		var v order
		call(t, "GET", second.url+"/orders/1001", nil, "").want(t, http.StatusOK, &v)
		if v.Status != "paid" || v.ChargeID != "ch_live_1001" || v.TotalCents != want.TotalCents {
			t.Errorf("the second replica has order 1001 as %+v", v)
		}
		call(t, "POST", second.url+"/orders", key, body).want(t, http.StatusOK, &v)
		if v.ID != "1001" {
			t.Errorf("a request retried on the second replica with the same Idempotency-Key made order %s, want 1001", v.ID)
		}
		pl.none(t)
	}

	// Without its event an order would never be charged, so it is refused.
	pl.failing.Store(true)
	call(t, "POST", orders.url+"/orders", nil, body).wantError(t, http.StatusServiceUnavailable, "could not be placed")
	call(t, "GET", orders.url+"/orders/1002", nil, "").wantError(t, http.StatusNotFound, "order 1002 not found")
}

// testCatalog checks the catalog, with a real Redis as its cache when
// cacheURL is set.
func testCatalog(t *testing.T, bins, cacheURL string, stopCache func()) {
	env := []string{"CATALOG_VERSION=v2", "CURRENCY=USD"}
	if cacheURL != "" {
		env = append(env, "CACHE_URL="+cacheURL)
	}
	catalog := start(t, filepath.Join(bins, "catalog"), env...)
	var products []struct {
		ID         string `json:"id"`
		PriceCents int64  `json:"priceCents"`
		Currency   string `json:"currency"`
	}
	r := call(t, "GET", catalog.url+"/products", nil, "")
	r.want(t, http.StatusOK, &products)
	if v := r.header.Get("x-catalog-version"); v != "v2" {
		t.Errorf("x-catalog-version = %q, want v2 from CATALOG_VERSION", v)
	}
	if len(products) != 5 || products[0].Currency != "USD" {
		t.Errorf("GET /products = %+v, want 5 products in USD", products)
	}
	call(t, "GET", catalog.url+"/products?category=gear", nil, "").want(t, http.StatusOK, &products)
	if len(products) != 2 {
		t.Errorf("GET /products?category=gear listed %d products, want 2", len(products))
	}
	call(t, "GET", catalog.url+"/products/p-404", nil, "").wantError(t, http.StatusNotFound, "product p-404 not found")
	if cacheURL != "" {
		// The first listing above filled the cache: the same listing from
		// a second replica of v2 is a hit with the same body, and v1's is
		// a miss (its own key: another version, another currency).
		first := call(t, "GET", catalog.url+"/products", nil, "")
		second := start(t, filepath.Join(bins, "catalog"), env...)
		again := call(t, "GET", second.url+"/products", nil, "")
		if first.header.Get("x-cache") != "hit" || again.header.Get("x-cache") != "hit" || string(again.body) != string(first.body) {
			t.Errorf("listing twice: x-cache %q then %q from another replica (bodies equal: %v), want hit, hit, equal",
				first.header.Get("x-cache"), again.header.Get("x-cache"), string(again.body) == string(first.body))
		}
		v1 := start(t, filepath.Join(bins, "catalog"), "CATALOG_VERSION=v1", "CURRENCY=EUR", "CACHE_URL="+cacheURL)
		r := call(t, "GET", v1.url+"/products", nil, "")
		r.want(t, http.StatusOK, &products)
		if r.header.Get("x-cache") != "miss" || products[0].Currency != "EUR" {
			t.Errorf("v1's first listing: x-cache %q, currency %q; want miss, EUR", r.header.Get("x-cache"), products[0].Currency)
		}
		// A cache that goes away costs the catalog nothing but the hits.
		stopCache()
		r = call(t, "GET", catalog.url+"/products", nil, "")
		r.want(t, http.StatusOK, &products)
		if r.header.Get("x-cache") != "miss" || len(products) != 5 {
			t.Errorf("with the cache stopped: x-cache %q and %d products, want miss and 5", r.header.Get("x-cache"), len(products))
		}
		if len(catalog.logRecords("cache unavailable: answering without it")) != 1 {
			t.Errorf("the catalog did not log the cache's absence once")
		}
	}
	if code := catalog.stop(t); code != 0 {
		t.Errorf("catalog exited with %d after SIGTERM, want 0", code)
	}
}
