package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const throttleSpec = `
name: shop
secrets:
  partner-keys: {keys: [acme, globex]}
gateway:
  stages:
    prod: {throttle: {rate: 2, burst: 3}}
    dev: {}
  authorizers:
    partners: {type: apiKey, identitySource: header.x-api-key, keys: {secret: partner-keys}}
  routes:
    - {path: /a, methods: [GET], integration: {type: mock, body: a}}
    - {path: /b, methods: [GET], throttle: {rate: 1}, integration: {type: mock, body: b}}
    - {path: /keyed, methods: [GET], authorizer: partners, throttle: {rate: 0.5, burst: 1}, integration: {type: mock, body: k}}
`

// TestThrottle checks the token buckets: per stage, per route, per API
// key; 429 with Retry-After, and recovery as the bucket refills.
func TestThrottle(t *testing.T) {
	t.Parallel()
	tg := startGateway(t, throttleSpec, nil, func(c *Config) { c.Secrets = partnerSecrets })
	status := func(path string, hdr ...string) reply { return call(t, "GET", tg.url+path, "", hdr...) }

	// Stage prod: burst 3 at 2/s, shared by its routes.
	for i, path := range []string{"/prod/a", "/prod/a", "/prod/b"} {
		if r := status(path); r.status != 200 {
			t.Fatalf("request %d within the burst: %d", i, r.status)
		}
	}
	r := status("/prod/a")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Errorf("over the stage's burst: %d Retry-After %q, want 429 1", r.status, r.header.Get("Retry-After"))
	}
	// Another stage has its own (none here).
	for range 5 {
		if r := status("/dev/a"); r.status != 200 {
			t.Fatalf("dev is not throttled: %d", r.status)
		}
	}
	// Half a second later the stage has one token again.
	tg.clock.Advance(500 * time.Millisecond)
	if r := status("/prod/a"); r.status != 200 {
		t.Errorf("after refilling: %d", r.status)
	}
	if r := status("/prod/a"); r.status != 429 {
		t.Errorf("one token only: %d", r.status)
	}

	// Route b in dev: 1/s, burst 1; Retry-After rounds up to a second.
	if r := status("/dev/b"); r.status != 200 {
		t.Fatalf("dev b: %d", r.status)
	}
	r = status("/dev/b")
	if r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Errorf("dev b again: %d %q", r.status, r.header.Get("Retry-After"))
	}
	tg.clock.Advance(time.Second)
	if r := status("/dev/b"); r.status != 200 {
		t.Errorf("dev b a second later: %d", r.status)
	}

	// Per key: acme's bucket is empty, globex's is not; 0.5/s means two
	// seconds to wait.
	acme, globex := []string{"X-Api-Key", "acme-key-0123456789"}, []string{"X-Api-Key", "globex-key-9876543210"}
	if r := status("/dev/keyed", acme...); r.status != 200 {
		t.Fatalf("acme: %d", r.status)
	}
	r = status("/dev/keyed", acme...)
	if r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Errorf("acme again: %d Retry-After %q, want 429 2", r.status, r.header.Get("Retry-After"))
	}
	if r := status("/dev/keyed", globex...); r.status != 200 {
		t.Errorf("globex has a bucket of its own: %d", r.status)
	}
	tg.clock.Advance(2 * time.Second)
	if r := status("/dev/keyed", acme...); r.status != 200 {
		t.Errorf("acme after 2s: %d", r.status)
	}

	if n := testutil.ToFloat64(tg.g.met.throttled.WithLabelValues("prod", "/a", "stage")); n != 2 {
		t.Errorf("throttled stage prod /a: %g, want 2", n)
	}
	if n := testutil.ToFloat64(tg.g.met.throttled.WithLabelValues("dev", "/keyed", "key")); n != 1 {
		t.Errorf("throttled by key: %g, want 1", n)
	}
	if n := testutil.ToFloat64(tg.g.met.requests.WithLabelValues("prod", "/a", "GET", "429")); n != 2 {
		t.Errorf("429s counted: %g, want 2", n)
	}
}

// TestThrottleSurvivesReload checks that a reload with the same throttle
// keeps the bucket (a reload must not refill every client's bucket), and
// that a changed rate starts afresh.
func TestThrottleSurvivesReload(t *testing.T) {
	t.Parallel()
	tg := startGateway(t, throttleSpec, nil, func(c *Config) { c.Secrets = partnerSecrets })
	for range 3 {
		call(t, "GET", tg.url+"/prod/a", "")
	}
	if r := call(t, "GET", tg.url+"/prod/a", ""); r.status != 429 {
		t.Fatalf("before reload: %d", r.status)
	}
	app, _ := loadSpec(t, throttleSpec, nil)
	if err := tg.g.Update(app); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", tg.url+"/prod/a", ""); r.status != 429 {
		t.Errorf("after a reload with the same throttle: %d, want 429", r.status)
	}
	app, _ = loadSpec(t, replaceOnce(throttleSpec, "rate: 2, burst: 3", "rate: 2, burst: 4"), nil)
	if err := tg.g.Update(app); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", tg.url+"/prod/a", ""); r.status != 200 {
		t.Errorf("after a reload with a new burst: %d, want 200", r.status)
	}
}
