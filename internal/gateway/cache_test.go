package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const cacheSpec = `
name: shop
services:
  catalog: {image: catalog:1}
secrets:
  partner-keys: {keys: [acme, globex]}
gateway:
  stages:
    prod: {cache: {enabled: true, ttl: 60s}}
    small: {cache: {enabled: true, ttl: 60s, size: 2Ki}}
    secure: {cache: {enabled: true, ttl: 60s, encrypted: true}}
    nocache: {}
  authorizers:
    partners: {type: apiKey, identitySource: header.x-api-key, keys: {secret: partner-keys}}
  routes:
    - path: /items/{id}
      methods: [GET, HEAD, POST]
      integration: {type: service, service: catalog, path: "/items/{id}"}
      cache: {ttl: 30s, keys: [path.id, query.lang, header.accept-language]}
    - path: /list
      methods: [GET]
      integration: {type: service, service: catalog}
    - path: /me
      methods: [GET]
      authorizer: partners
      integration: {type: service, service: catalog}
`

// catalogBackend answers a fixed-size body naming the path, its query and
// the principal, or the status ?status= asks for; it counts requests.
type catalogBackend struct {
	*httptest.Server
	hits atomic.Int64
}

func newCatalog(t *testing.T) *catalogBackend {
	c := &catalogBackend{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.hits.Add(1)
		if s := r.URL.Query().Get("status"); s != "" {
			w.WriteHeader(atoi(s))
		}
		if r.URL.Query().Get("private") != "" {
			w.Header().Set("Cache-Control", "private")
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"query":%q,"who":%q,"n":%d,"pad":"secret-payload-%s"}`,
			r.URL.Path, r.URL.RawQuery, r.Header.Get("Nubo-Principal"), n, strings.Repeat("x", 600))
	}))
	t.Cleanup(c.Close)
	return c
}

// TestCache checks hits, misses and keys, TTLs, what is not stored, the
// per-principal keys of authorized routes and the authorized bypass.
func TestCache(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	tg := startGateway(t, cacheSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"catalog": cat.URL})
		c.Secrets = partnerSecrets
	})
	steps := []struct {
		name, method, path string
		headers            []string
		cache              string // Nubo-Cache wanted
		backend            bool   // reaches the backend
	}{
		{"first", "GET", "/prod/items/1", nil, "miss", true},
		{"again", "GET", "/prod/items/1", nil, "hit", false},
		{"other id", "GET", "/prod/items/2", nil, "miss", true},
		{"query key", "GET", "/prod/items/1?lang=fr", nil, "miss", true},
		{"query key again", "GET", "/prod/items/1?lang=fr", nil, "hit", false},
		{"query not a key", "GET", "/prod/items/1?utm=x", nil, "hit", false},
		{"header key", "GET", "/prod/items/1", []string{"Accept-Language", "de"}, "miss", true},
		{"header not a key", "GET", "/prod/items/1", []string{"X-Other", "1"}, "hit", false},
		{"HEAD has its own entry", "HEAD", "/prod/items/1", nil, "miss", true},
		{"HEAD again", "HEAD", "/prod/items/1", nil, "hit", false},
		{"POST is never cached", "POST", "/prod/items/1", nil, "", true},
		{"POST again", "POST", "/prod/items/1", nil, "", true},
		{"stage cache, whole query", "GET", "/prod/list?a=1", nil, "miss", true},
		{"other query", "GET", "/prod/list?a=2", nil, "miss", true},
		{"same query", "GET", "/prod/list?a=1", nil, "hit", false},
		{"public route ignores no-cache", "GET", "/prod/list?a=1", []string{"Cache-Control", "no-cache"}, "hit", false},
		{"404 is not stored", "GET", "/prod/list?status=404", nil, "miss", true},
		{"404 again", "GET", "/prod/list?status=404", nil, "miss", true},
		{"private is not stored", "GET", "/prod/list?private=1", nil, "miss", true},
		{"private again", "GET", "/prod/list?private=1", nil, "miss", true},
		{"acme", "GET", "/prod/me", []string{"X-Api-Key", "acme-key-0123456789"}, "miss", true},
		{"globex has its own", "GET", "/prod/me", []string{"X-Api-Key", "globex-key-9876543210"}, "miss", true},
		{"acme again", "GET", "/prod/me", []string{"X-Api-Key", "acme-key-0123456789"}, "hit", false},
		{"acme bypasses", "GET", "/prod/me", []string{"X-Api-Key", "acme-key-0123456789", "Cache-Control", "no-cache"}, "bypass", true},
		{"stage without cache", "GET", "/nocache/list", nil, "", true},
		{"stage without cache, route cache", "GET", "/nocache/items/1", nil, "miss", true},
		{"stage without cache, route cache again", "GET", "/nocache/items/1", nil, "hit", false},
	}
	var bodies = map[string]string{}
	for _, s := range steps {
		before := cat.hits.Load()
		r := call(t, s.method, tg.url+s.path, "", s.headers...)
		if r.status/100 != 2 && !strings.Contains(s.path, "status=") {
			t.Errorf("%s: %d %s", s.name, r.status, r.body)
			continue
		}
		if got := r.header.Get("Nubo-Cache"); got != s.cache {
			t.Errorf("%s: Nubo-Cache %q, want %q", s.name, got, s.cache)
		}
		if reached := cat.hits.Load() > before; reached != s.backend {
			t.Errorf("%s: reached the backend: %v, want %v", s.name, reached, s.backend)
		}
		if s.method == "HEAD" {
			get := call(t, "GET", tg.url+s.path, "")
			if r.header.Get("Content-Length") != fmt.Sprint(len(get.body)) {
				t.Errorf("%s: Content-Length %q, want the GET's %d", s.name, r.header.Get("Content-Length"), len(get.body))
			}
		}
		key := s.method + s.path + strings.Join(s.headers, ",")
		if s.cache == "hit" {
			if prev, ok := bodies[s.method+s.path]; ok && prev != r.body && !strings.Contains(s.name, "not a key") {
				t.Errorf("%s: a hit answered another body", s.name)
			}
			if r.header.Get("Age") == "" {
				t.Errorf("%s: a hit without Age", s.name)
			}
		}
		bodies[key] = r.body
		if _, ok := bodies[s.method+s.path]; !ok {
			bodies[s.method+s.path] = r.body
		}
	}
	// acme's entry was replaced by the bypass: the next hit is the new one.
	r := call(t, "GET", tg.url+"/prod/me", "", "X-Api-Key", "acme-key-0123456789")
	if r.header.Get("Nubo-Cache") != "hit" || !strings.Contains(r.body, `"who":"acme"`) || !strings.Contains(r.body, fmt.Sprintf(`"n":%d`, cat.hits.Load()-2)) {
		t.Errorf("after the bypass: %s %s", r.header.Get("Nubo-Cache"), r.body[:60])
	}
	// The route's TTL (30s) is shorter than the stage's (60s).
	tg.clock.Advance(31 * time.Second)
	if r := call(t, "GET", tg.url+"/prod/items/1", ""); r.header.Get("Nubo-Cache") != "miss" {
		t.Errorf("after the route's TTL: %s", r.header.Get("Nubo-Cache"))
	}
	if r := call(t, "GET", tg.url+"/prod/list?a=1", ""); r.header.Get("Nubo-Cache") != "hit" {
		t.Errorf("within the stage's TTL: %s", r.header.Get("Nubo-Cache"))
	}
	tg.clock.Advance(30 * time.Second)
	if r := call(t, "GET", tg.url+"/prod/list?a=1", ""); r.header.Get("Nubo-Cache") != "miss" {
		t.Errorf("after the stage's TTL: %s", r.header.Get("Nubo-Cache"))
	}
}

// TestCacheEviction checks the size bound: the least recently used entry
// goes first.
func TestCacheEviction(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	tg := startGateway(t, cacheSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"catalog": cat.URL})
		c.Secrets = partnerSecrets
	})
	// Entries are about 1 KiB: two fit in 2Ki.
	for i, s := range []struct{ id, want string }{
		{"1", "miss"}, {"2", "miss"}, {"1", "hit"}, // 1 is now the most recently used
		{"3", "miss"}, // evicts 2
		{"1", "hit"}, {"2", "miss"}, {"3", "miss"},
	} {
		r := call(t, "GET", tg.url+"/small/items/"+s.id, "")
		if got := r.header.Get("Nubo-Cache"); got != s.want {
			t.Errorf("step %d, item %s: %s, want %s", i, s.id, got, s.want)
		}
	}
	c := tg.g.cur.Load().byName["small"].cache
	n, size := c.stats()
	if n != 2 || size > 2048 {
		t.Errorf("%d entries of %d bytes in a 2Ki cache", n, size)
	}
}

// TestCacheEncrypted checks that an encrypted stage serves hits as any
// other, and that its entries hold neither the answer nor the key in the
// clear.
func TestCacheEncrypted(t *testing.T) {
	t.Parallel()
	cat := newCatalog(t)
	tg := startGateway(t, cacheSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"catalog": cat.URL})
		c.Secrets = partnerSecrets
	})
	first := call(t, "GET", tg.url+"/secure/items/42?lang=fr", "")
	second := call(t, "GET", tg.url+"/secure/items/42?lang=fr", "")
	if first.header.Get("Nubo-Cache") != "miss" || second.header.Get("Nubo-Cache") != "hit" || first.body != second.body {
		t.Fatalf("encrypted cache: %s then %s", first.header.Get("Nubo-Cache"), second.header.Get("Nubo-Cache"))
	}
	if second.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers lost in the sealed entry: %v", second.header)
	}
	c := tg.g.cur.Load().byName["secure"].cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) != 1 {
		t.Fatalf("%d entries", len(c.items))
	}
	// The entry's key is the HMAC-SHA256, under the gateway's key, of the
	// request's cache key (stage, method, route, path, then the route's
	// keys), and nothing else: not the cache key itself, nor a digest that
	// anyone could compute from a guessed path.
	plain := "secure\x00GET\x00/items/{id}\x00/items/42\x00path.id=42\x00query.lang=fr\x00header.Accept-Language=\x00"
	mac := hmac.New(sha256.New, tg.g.hashKey)
	mac.Write([]byte(plain))
	want := string(mac.Sum(nil))
	for k, el := range c.items {
		e := el.Value.(*cacheEntry)
		if e.body != nil || e.header != nil || e.sealed == nil {
			t.Error("an encrypted entry holds its answer in the clear")
		}
		// 14 and 16 bytes: a chance match in the sealed bytes is below 1e-30.
		if bytes.Contains(e.sealed, []byte("secret-payload")) || bytes.Contains(e.sealed, []byte("application/json")) {
			t.Error("the sealed entry contains the answer's bytes")
		}
		if k != want {
			t.Errorf("the entry's key is %x, want HMAC-SHA256(hash key, %q) = %x", k, plain, want)
		}
	}
}
