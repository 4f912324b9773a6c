package gateway

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/nubo-dev/nubo/internal/urlpath/urlpathtest"
)

// The gateway's fuzz targets: the route trie, the path a request goes to
// (normalisation, routing and the backend path together) and bearer
// tokens. Their seeds run in every `go test`; `make fuzz` runs them for a
// bounded time.

// fuzzTemplates are routes that exercise every kind of segment and the
// backtracking between them.
var fuzzTemplates = []string{"/", "/users", "/users/me", "/users/{id}", "/users/{id}/orders/{order}",
	"/files/{path+}", "/a/{x}/c", "/a/b/{y}", "/a/{x}/{z+}", "/static/{proxy+}"}

// templateRegexp is a template as a regular expression over the path
// without its leading slash: {name} is one non-empty segment, {name+} the
// rest with at least one character that is not a slash.
func templateRegexp(tmpl string) *regexp.Regexp {
	var parts []string
	for _, seg := range templateSegments(tmpl) {
		switch {
		case isGreedy(seg):
			parts = append(parts, `(.*[^/].*)`)
		case isParam(seg):
			parts = append(parts, `([^/]+)`)
		default:
			parts = append(parts, regexp.QuoteMeta(seg))
		}
	}
	return regexp.MustCompile(`^(?s)` + strings.Join(parts, "/") + `$`)
}

// FuzzRouterMatch checks the trie against one regular expression per
// route: a match is a route whose expression matches, with the values the
// expression captures, and when any expression matches the trie finds a
// route (backtracking cannot lose one).
func FuzzRouterMatch(f *testing.F) {
	root := &node{}
	res := map[string]*regexp.Regexp{}
	for i, tmpl := range fuzzTemplates {
		params, err := checkTemplate(tmpl)
		if err != nil {
			f.Fatal(err)
		}
		if err := root.insert(&route{index: i, path: tmpl, params: params, anyMethod: true}); err != nil {
			f.Fatal(err)
		}
		res[tmpl] = templateRegexp(tmpl)
	}
	for _, p := range []string{"/", "/users/", "/users/me/orders/7", "/a/b/c", "/a/z/c", "/a/b/c/d", "/files/a//b/", "/files/", "//", "/users//", "/static/%2e%2e", "/a//c"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		rel := strings.TrimPrefix(path, "/")
		if len(rel) > 1 && rel[len(rel)-1] == '/' {
			rel = rel[:len(rel)-1]
		}
		n, vals := root.match(path, nil)
		if n == nil {
			for tmpl, re := range res {
				if re.MatchString(rel) {
					t.Fatalf("%q: no route, but %s matches it", path, tmpl)
				}
			}
			return
		}
		rt := n.any
		m := res[rt.path].FindStringSubmatch(rel)
		if m == nil {
			t.Fatalf("%q routed to %s, which does not match it", path, rt.path)
		}
		if !slices.Equal(m[1:], vals) {
			t.Fatalf("%q routed to %s with %q, want %q", path, rt.path, vals, m[1:])
		}
	})
}

// FuzzGatewayPath sends any request target through {proxy+} and {param}
// routes to a file server as lenient as real ones get (it decodes again,
// reads backslashes as slashes), whose secret lies beside the routes'
// directory: it is never served, and every request is answered (a panic
// closes the connection without an answer).
func FuzzGatewayPath(f *testing.F) {
	addr, _ := startFilesGateway(f)
	for _, target := range urlpathtest.Corpus {
		for _, prefix := range []string{"/api/static", "/api/one", "/api/public"} {
			f.Add(strings.Replace(target, "/public", prefix, 1))
		}
	}
	f.Add("/api/static/hello.txt")
	f.Fuzz(func(t *testing.T, target string) {
		if target == "" || strings.ContainsFunc(target, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return // not a request target on the wire
		}
		status, body := urlpathtest.Get(t, addr, "shop", target)
		if strings.Contains(body, urlpathtest.Secret) {
			t.Fatalf("GET %s: %d, served the secret", target, status)
		}
		if status == 0 {
			t.Fatalf("GET %s: the connection closed without an answer", target)
		}
	})
}

// FuzzJWT sends any bearer token to a route behind a jwt authorizer: a
// token let through is one that verifies, on its own, against the key set
// with the authorizer's issuer and an expiry; anything else is 401, and
// every request is answered.
func FuzzJWT(f *testing.F) {
	is := newIssuer(f)
	is.addKey(f, "k1", jwa.ES256(), true)
	is.addKey(f, "k2", jwa.RS256(), false) // signs, but is not in the key set
	users := newEchoBackend(f)
	jwks := is.jwks(f)
	tg := startGateway(f, jwtSpec("jwksFile: jwks.json"), map[string]string{"jwks.json": string(jwks)}, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
	})
	now := tg.clock.Now()
	set, err := jwk.Parse(jwks)
	if err != nil {
		f.Fatal(err)
	}
	addr := strings.TrimPrefix(tg.url, "http://")
	for _, tok := range []string{
		is.sign(f, "k1", now, nil),
		is.sign(f, "k1", now, map[string]any{"exp": now.Add(-time.Hour)}),
		is.sign(f, "k1", now, map[string]any{"iss": "https://evil.test/"}),
		is.sign(f, "k2", now, nil),
		unsigned(map[string]any{"alg": "none"}, map[string]any{"iss": "https://auth.test/", "exp": now.Add(time.Hour).Unix()}),
		unsigned(map[string]any{"alg": "ES256", "kid": "k1", "crit": []string{"b64"}}, map[string]any{}),
		unsigned(map[string]any{"alg": "HS256", "kid": "k1"}, map[string]any{"iss": "https://auth.test/"}),
		"a.b.c", "...", "eyJ.eyJ.", "",
	} {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if strings.ContainsFunc(token, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return // not a header value on the wire
		}
		status, body := urlpathtest.Get(t, addr, "shop", "/me", "Authorization", "Bearer "+token)
		switch status {
		case http.StatusOK:
			if _, err := jwt.Parse([]byte(strings.TrimSpace(token)), jwt.WithKeySet(set), jwt.WithValidate(true),
				jwt.WithAcceptableSkew(jwtLeeway), jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
				jwt.WithIssuer("https://auth.test/"), jwt.WithRequiredClaim("exp")); err != nil {
				t.Fatalf("token %q let through, but it does not verify: %v", token, err)
			}
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
		default:
			t.Fatalf("token %q: %d %q", token, status, body)
		}
	})
}
