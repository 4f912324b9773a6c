package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// testIssuer is an identity provider inside the test: signing keys, a
// JWKS endpoint publishing some of them, and a count of its fetches.
type testIssuer struct {
	*httptest.Server
	mu        sync.Mutex
	keys      map[string]jwk.Key // private keys by kid
	published []string
	fetches   atomic.Int64
}

func newIssuer(t testing.TB) *testIssuer {
	t.Helper()
	is := &testIssuer{keys: map[string]jwk.Key{}}
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(is.jwks(t))
	}))
	t.Cleanup(is.Close)
	return is
}

// addKey makes a key; publish puts it in the key set.
func (is *testIssuer) addKey(t testing.TB, kid string, alg jwa.SignatureAlgorithm, publish bool) {
	t.Helper()
	var raw any
	var err error
	switch alg {
	case jwa.RS256():
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	_ = k.Set(jwk.AlgorithmKey, alg)
	is.mu.Lock()
	is.keys[kid] = k
	if publish {
		is.published = append(is.published, kid)
	}
	is.mu.Unlock()
}

func (is *testIssuer) publish(kids ...string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.published = kids
}

func (is *testIssuer) jwks(t testing.TB) []byte {
	is.mu.Lock()
	defer is.mu.Unlock()
	set := jwk.NewSet()
	for _, kid := range is.published {
		pub, err := is.keys[kid].PublicKey()
		if err != nil {
			t.Error(err)
		}
		_ = set.AddKey(pub)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Error(err)
	}
	return b
}

// sign makes a token signed with the key kid; claims override the
// defaults (iss, aud, sub, exp an hour after now).
func (is *testIssuer) sign(t testing.TB, kid string, now time.Time, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	key := is.keys[kid]
	is.mu.Unlock()
	b := jwt.NewBuilder().Issuer("https://auth.test/").Audience([]string{"shop-api"}).Subject("user-1").
		Expiration(now.Add(time.Hour)).IssuedAt(now).Claim("scope", "read write")
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range claims {
		if v == nil {
			_ = tok.Remove(k)
			continue
		}
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	alg, _ := key.Algorithm()
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// unsigned builds a token with alg none, or any header, by hand.
func unsigned(header, payload map[string]any) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func jwtSpec(jwks string) string {
	return `
name: shop
services:
  users: {image: users:1}
gateway:
  authorizers:
    jwt:
      type: jwt
      issuer: https://auth.test/
      audience: [shop-api, other-api]
      ` + jwks + `
  routes:
    - path: /me
      methods: [GET]
      authorizer: jwt
      integration: {type: service, service: users}
    - path: /public
      methods: [GET]
      integration: {type: service, service: users}
`
}

// TestJWT checks the jwt authorizer: a valid token reaches the backend
// with its claims as headers; tokens expired, not yet valid, for another
// audience or issuer, with alg none, an algorithm not allowed, a bad
// signature or none at all are refused; failures are logged with their
// reason, never the token.
func TestJWT(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	is.addKey(t, "k1", jwa.ES256(), true)
	is.addKey(t, "rogue", jwa.ES256(), false)
	users := newEchoBackend(t)
	tg := startGateway(t, jwtSpec("jwks: "+is.URL+"/jwks"), nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
	})
	now := tg.clock.Now()
	good := is.sign(t, "k1", now, nil)

	r := call(t, "GET", tg.url+"/me", "", "Authorization", "Bearer "+good, "Nubo-Principal", "admin", "Nubo-Context-Role", "root")
	if r.status != 200 {
		t.Fatalf("valid token: %d %s", r.status, r.body)
	}
	s := r.seen(t)
	for name, want := range map[string]string{
		"Nubo-Authorizer":     "jwt",
		"Nubo-Principal":      "user-1",
		"Nubo-Context-Scope":  "read write",
		"Nubo-Context-Aud":    "shop-api",
		"Nubo-Context-Iss":    "https://auth.test/",
		"Nubo-Context-Sub":    "user-1",
		"Authorization":       "Bearer " + good,
		"Nubo-Context-Role":   "",
		"X-Forwarded-Proto":   "http",
		"Nubo-Context-Exp":    "",
		"Nubo-Context-Nosuch": "",
	} {
		got := strings.Join(s.Headers[name], ",")
		if name == "Nubo-Context-Exp" {
			if got == "" {
				t.Errorf("backend lacks %s", name)
			}
			continue
		}
		if got != want {
			t.Errorf("backend got %s: %q, want %q", name, got, want)
		}
	}
	// A public route: the client's authorizer headers never pass.
	s = call(t, "GET", tg.url+"/public", "", "Nubo-Principal", "admin", "Nubo-Authorizer", "jwt").seen(t)
	if len(s.Headers["Nubo-Principal"]) > 0 || len(s.Headers["Nubo-Authorizer"]) > 0 {
		t.Errorf("a client's Nubo-* headers reached the backend: %v", s.Headers)
	}

	hs256, _ := jwt.NewBuilder().Issuer("https://auth.test/").Audience([]string{"shop-api"}).Expiration(now.Add(time.Hour)).Build()
	hsToken, _ := jwt.Sign(hs256, jwt.WithKey(jwa.HS256(), []byte("a shared secret of thirty-two bytes!")))
	forged := strings.Split(good, ".")
	rogue := strings.Split(is.sign(t, "rogue", now, nil), ".")
	badSig := forged[0] + "." + forged[1] + "." + rogue[2]
	tests := []struct {
		name, auth string
		status     int
	}{
		{"no token", "", 401},
		{"not a token", "Bearer abc", 401},
		{"expired", "Bearer " + is.sign(t, "k1", now, map[string]any{"exp": now.Add(-time.Hour)}), 401},
		{"expired within the leeway", "Bearer " + is.sign(t, "k1", now, map[string]any{"exp": now.Add(-10 * time.Second)}), 200},
		{"not valid yet", "Bearer " + is.sign(t, "k1", now, map[string]any{"nbf": now.Add(time.Hour)}), 401},
		{"issued in the future", "Bearer " + is.sign(t, "k1", now, map[string]any{"iat": now.Add(time.Hour)}), 401},
		{"no exp", "Bearer " + is.sign(t, "k1", now, map[string]any{"exp": nil}), 401},
		{"wrong audience", "Bearer " + is.sign(t, "k1", now, map[string]any{"aud": []string{"billing"}}), 401},
		{"second audience", "Bearer " + is.sign(t, "k1", now, map[string]any{"aud": []string{"billing", "other-api"}}), 200},
		{"wrong issuer", "Bearer " + is.sign(t, "k1", now, map[string]any{"iss": "https://evil.test/"}), 401},
		{"alg none", "Bearer " + unsigned(map[string]any{"alg": "none", "kid": "k1"}, map[string]any{"iss": "https://auth.test/", "aud": "shop-api", "exp": now.Add(time.Hour).Unix()}), 401},
		{"alg none, no kid", "Bearer " + unsigned(map[string]any{"alg": "none"}, map[string]any{"iss": "https://auth.test/", "aud": "shop-api", "exp": now.Add(time.Hour).Unix()}), 401},
		{"HS256 not allowed", "Bearer " + string(hsToken), 401},
		{"bad signature", "Bearer " + badSig, 401},
		{"unknown crit", "Bearer " + unsigned(map[string]any{"alg": "ES256", "kid": "k1", "crit": []string{"x"}}, map[string]any{}) + "sig", 401},
		{"without Bearer", good, 200},
	}
	for _, tt := range tests {
		var hdr []string
		if tt.auth != "" {
			hdr = []string{"Authorization", tt.auth}
		}
		r := call(t, "GET", tg.url+"/me", "", hdr...)
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
		}
		if tt.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tt.name, r.header.Get("WWW-Authenticate"))
		}
	}
	logs := tg.logs.String()
	mustContain(t, "logs", logs, `"reason":"no token in header.Authorization"`)
	mustContain(t, "logs", logs, `algorithm \"none\" is not allowed`)
	mustContain(t, "logs", logs, `audience`)
	if strings.Contains(logs, forged[1]) || strings.Contains(logs, forged[2]) {
		t.Error("a token reached the log")
	}
	if n := is.fetches.Load(); n != 1 {
		t.Errorf("%d fetches of the key set, want 1 (cached)", n)
	}
}

// TestJWTKeyRotation checks the key set's cache: an unknown kid fetches
// the set again (at most once per JWKSMinRefresh), the set is refreshed
// after JWKSRefresh, and a key the issuer removed stops working once the
// verified tokens expire from the gateway's memory.
func TestJWTKeyRotation(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	is.addKey(t, "k1", jwa.ES256(), true)
	is.addKey(t, "k2", jwa.RS256(), false)
	is.addKey(t, "k3", jwa.ES256(), false)
	users := newEchoBackend(t)
	tg := startGateway(t, jwtSpec("jwks: "+is.URL+"/jwks"), nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
		c.JWKSRefresh = time.Hour
		c.JWKSMinRefresh = 10 * time.Second
	})
	get := func(token string) int {
		return call(t, "GET", tg.url+"/me", "", "Authorization", "Bearer "+token).status
	}
	now := tg.clock.Now()
	old := is.sign(t, "k1", now, map[string]any{"exp": now.Add(24 * time.Hour)})
	if s := get(old); s != 200 {
		t.Fatalf("k1: %d", s)
	}
	// The issuer rotates to k2 (RS256): the first token signed with it
	// comes before the gateway may fetch again, so it is refused without a
	// fetch; once JWKSMinRefresh has passed, the unknown kid fetches.
	is.publish("k1", "k2")
	rotated := is.sign(t, "k2", now, map[string]any{"exp": now.Add(24 * time.Hour)})
	if s := get(rotated); s != 401 || is.fetches.Load() != 1 {
		t.Errorf("k2 right after the first fetch: %d after %d fetches, want 401 after 1", s, is.fetches.Load())
	}
	tg.clock.Advance(11 * time.Second)
	if s := get(rotated); s != 200 || is.fetches.Load() != 2 {
		t.Errorf("k2 after rotation: %d after %d fetches, want 200 after 2", s, is.fetches.Load())
	}
	// A forged kid right after cannot make the gateway fetch again.
	if s := get(is.sign(t, "k3", tg.clock.Now(), nil)); s != 401 || is.fetches.Load() != 2 {
		t.Errorf("unknown k3: %d after %d fetches, want 401 after 2", s, is.fetches.Load())
	}
	// The issuer drops k1. Tokens verified before stay good for a few
	// minutes at most; after the refresh interval the set is fetched
	// again and k1 is unknown.
	is.publish("k2")
	tg.clock.Advance(time.Hour + time.Minute)
	if s := get(old); s != 401 {
		t.Errorf("k1 after the issuer dropped it: %d, want 401", s)
	}
	if s := get(rotated); s != 200 {
		t.Errorf("k2 after the refresh: %d", s)
	}
	if n := is.fetches.Load(); n != 3 {
		t.Errorf("%d fetches, want 3", n)
	}
}

// TestJWTKeySetFile checks jwksFile, relative to the spec, and that a
// broken one fails New.
func TestJWTKeySetFile(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	is.addKey(t, "k1", jwa.ES256(), true)
	users := newEchoBackend(t)
	files := map[string]string{"jwks.json": string(is.jwks(t))}
	tg := startGateway(t, jwtSpec("jwksFile: jwks.json"), files, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
	})
	token := is.sign(t, "k1", tg.clock.Now(), nil)
	if r := call(t, "GET", tg.url+"/me", "", "Authorization", "Bearer "+token); r.status != 200 {
		t.Errorf("token checked against jwksFile: %d %s", r.status, r.body)
	}

	app, _ := loadSpec(t, jwtSpec("jwksFile: jwks.json"), map[string]string{"jwks.json": `{"keys": [{"kty": "nope"}]}`})
	if _, err := New(Config{App: app}); err == nil || !strings.Contains(err.Error(), `authorizer "jwt"`) {
		t.Errorf("a broken jwksFile: %v", err)
	}
}

// TestJWTKeySetFromService checks that a key-set URL naming a service of
// the spec is fetched through the mesh (here the stand-in Services).
func TestJWTKeySetFromService(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	is.addKey(t, "k1", jwa.ES256(), true)
	users := newEchoBackend(t)
	yaml := strings.Replace(jwtSpec("jwks: http://auth/.well-known/jwks.json"), "services:\n", "services:\n  auth: {image: auth:1}\n", 1)
	tg := startGateway(t, yaml, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL, "auth": is.URL})
	})
	token := is.sign(t, "k1", tg.clock.Now(), nil)
	if r := call(t, "GET", tg.url+"/me", "", "Authorization", "Bearer "+token); r.status != 200 || is.fetches.Load() != 1 {
		t.Errorf("key set from the service auth: %d after %d fetches", r.status, is.fetches.Load())
	}
}

// TestJWTKeySetFileDevZero checks that a jwksFile that never ends is
// refused rather than read until memory runs out.
func TestJWTKeySetFileDevZero(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	app, _ := loadSpec(t, jwtSpec("jwksFile: /dev/zero"), nil)
	if _, err := New(Config{App: app}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("jwksFile /dev/zero: %v, want it refused", err)
	}
}
