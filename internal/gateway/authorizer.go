package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Headers the backend gets from the gateway's authorizer. A client's own
// headers of these names are removed from every request, so a backend can
// trust them.
const (
	// HeaderAuthorizer names the authorizer that let the request in.
	HeaderAuthorizer = "Nubo-Authorizer"
	// HeaderPrincipal is who the credential belongs to: a JWT's sub, an
	// API key's name in its secret, a function authorizer's principal.
	HeaderPrincipal = "Nubo-Principal"
	// HeaderContextPrefix starts one header per entry of the authorizer's
	// context: a JWT's claims, a function authorizer's context.
	HeaderContextPrefix = "Nubo-Context-"
)

// AuthorizeEventType is the type of the event a function authorizer is
// invoked with; its data is an AuthorizeRequest.
const AuthorizeEventType = "nubo.gateway.authorize"

// AuthorizeRequest is the data of a function authorizer's event.
type AuthorizeRequest struct {
	// Identity is the credential taken from the identitySource.
	Identity string `json:"identity"`
	// Authorizer names the authorizer.
	Authorizer string `json:"authorizer"`
	// Method, Route and Stage say what the first request of this identity
	// asked for; the answer is cached per identity, across routes.
	Method string `json:"method"`
	Route  string `json:"route"`
	Stage  string `json:"stage"`
}

// AuthorizeAnswer is what a function authorizer answers.
type AuthorizeAnswer struct {
	// Allow lets the request in; false answers 403.
	Allow bool `json:"allow"`
	// Principal names who the identity is (Nubo-Principal).
	Principal string `json:"principal,omitempty"`
	// Context reaches the backend as Nubo-Context-* headers.
	Context map[string]any `json:"context,omitempty"`
}

// authorizer checks a request's credential.
type authorizer interface {
	authorize(ctx context.Context, x *exchange) (*authResult, error)
}

// authResult is an authorizer's verdict on a credential that passed, ready
// to be copied onto requests (authorizers cache it as it is).
type authResult struct {
	principal string
	// headers are Nubo-Principal and the Nubo-Context-* headers, built
	// once.
	headers []headerKV
	// keyName is the API key's name, for per-key buckets.
	keyName string
	// context is the authorizer's context for $request.authorizer.
	context map[string]any
}

type headerKV struct {
	name string
	vals []string
}

// authError is a refused credential: 401 (none, or not valid), 403 (valid
// but denied) or 503 (the authorizer could not decide). reason is logged,
// never shown to the client, and never holds the credential.
type authError struct {
	status int
	reason string
	// missing says there was no credential at all.
	missing bool
}

func (e *authError) Error() string { return e.reason }

func unauthorized(format string, args ...any) error {
	return &authError{status: http.StatusUnauthorized, reason: fmt.Sprintf(format, args...)}
}

func missingCredential(format string, args ...any) error {
	return &authError{status: http.StatusUnauthorized, reason: fmt.Sprintf(format, args...), missing: true}
}

func forbidden(format string, args ...any) error {
	return &authError{status: http.StatusForbidden, reason: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) error {
	return &authError{status: http.StatusServiceUnavailable, reason: fmt.Sprintf(format, args...)}
}

// outcome is the authorizer-result label of err.
func outcome(err error) string {
	var ae *authError
	if errors.As(err, &ae) {
		switch ae.status {
		case http.StatusUnauthorized:
			return "unauthorized"
		case http.StatusForbidden:
			return "denied"
		}
	}
	return "error"
}

// identitySource is where a credential is: a header or a query parameter.
type identitySource struct {
	header string // canonical
	query  string
	text   string
}

func parseIdentitySource(src string) (identitySource, error) {
	if src == "" {
		src = "header." + defaultIdentityHdr
	}
	kind, name, _ := strings.Cut(src, ".")
	switch {
	case name == "":
	case kind == "header":
		return identitySource{header: http.CanonicalHeaderKey(name), text: src}, nil
	case kind == "query":
		return identitySource{query: name, text: src}, nil
	}
	return identitySource{}, fmt.Errorf("identitySource %q: write header.NAME or query.NAME", src)
}

func (s identitySource) get(r *http.Request) string {
	if s.header != "" {
		if v := r.Header[s.header]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	return r.URL.Query().Get(s.query)
}

func (g *Gateway) compileAuthorizer(c *compiled, name string, a *spec.Authorizer) (authorizer, error) {
	src, err := parseIdentitySource(a.IdentitySource)
	if err != nil {
		return nil, err
	}
	switch a.Type {
	case "jwt":
		return g.compileJWT(c, name, a, src)
	case "apiKey":
		return g.compileAPIKey(name, a, src)
	case "function":
		if a.Function == "" {
			return nil, errors.New("a function authorizer needs function")
		}
		ttl := a.ResultTTL.Duration
		if !a.ResultTTL.IsSet() {
			ttl = defaultAuthTTL
		}
		key := fmt.Sprintf("answers|%s|%s|%s|%s", name, a.Function, src.text, ttl)
		c.used[key] = true
		return &functionAuthorizer{
			g: g, name: name, function: a.Function, src: src, ttl: ttl,
			cache: g.state.answerCache(key, func() *answerCache { return newAnswerCache(maxAnswers) }),
		}, nil
	}
	return nil, fmt.Errorf("type %q: want jwt, apiKey or function", a.Type)
}

// apiKeyAuthorizer lets in requests whose key is one of a secret's values;
// the key's name in the secret is the principal.
type apiKeyAuthorizer struct {
	name, secret string
	src          identitySource
	names        []string
	sums         [][sha256.Size]byte
	results      []*authResult
}

func (g *Gateway) compileAPIKey(name string, a *spec.Authorizer, src identitySource) (*apiKeyAuthorizer, error) {
	if a.Keys == nil || a.Keys.Secret == "" {
		return nil, errors.New("an apiKey authorizer needs keys: {secret: NAME}")
	}
	sec := g.cfg.App.Secrets[a.Keys.Secret]
	if sec == nil {
		return nil, fmt.Errorf("keys: unknown secret %q", a.Keys.Secret)
	}
	if g.cfg.Secrets == nil {
		return nil, fmt.Errorf("keys: secret %q: the gateway was given no secrets", a.Keys.Secret)
	}
	ak := &apiKeyAuthorizer{name: name, secret: a.Keys.Secret, src: src}
	for _, k := range sec.Keys {
		v, ok := g.cfg.Secrets(a.Keys.Secret, k)
		if !ok || v == "" {
			return nil, fmt.Errorf("keys: secret %q has no value for key %q", a.Keys.Secret, k)
		}
		ak.names = append(ak.names, k)
		ak.sums = append(ak.sums, sha256.Sum256([]byte(v)))
		ak.results = append(ak.results, newAuthResult(k, k, map[string]any{"apiKey": k}))
	}
	if len(ak.names) == 0 {
		return nil, fmt.Errorf("keys: secret %q declares no keys", a.Keys.Secret)
	}
	return ak, nil
}

func (a *apiKeyAuthorizer) authorize(_ context.Context, x *exchange) (*authResult, error) {
	cred := a.src.get(x.r)
	if cred == "" {
		return nil, missingCredential("no API key in %s", a.src.text)
	}
	// Every key is compared, in constant time, whatever matched: the time
	// taken says nothing about which key is close.
	sum := sha256.Sum256([]byte(cred))
	match := -1
	for i := range a.sums {
		if subtle.ConstantTimeCompare(sum[:], a.sums[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, forbidden("unknown API key (sha256 prefix %x)", sum[:4])
	}
	return a.results[match], nil
}

// maxAnswers bounds a function authorizer's cache of answers.
const maxAnswers = 10000

// functionAuthorizer asks a function, and caches its answer per identity.
type functionAuthorizer struct {
	g        *Gateway
	name     string
	function string
	src      identitySource
	ttl      time.Duration
	cache    *answerCache
}

func (a *functionAuthorizer) authorize(ctx context.Context, x *exchange) (*authResult, error) {
	cred := a.src.get(x.r)
	if cred == "" {
		return nil, missingCredential("no credential in %s", a.src.text)
	}
	id := sha256.Sum256([]byte(cred))
	now := x.start
	if a.ttl > 0 {
		if ans, ok := a.cache.get(id, now); ok {
			return ans.verdict()
		}
	}
	ans, err := a.ask(ctx, cred, x)
	if err != nil {
		return nil, err
	}
	if a.ttl > 0 {
		a.cache.put(id, ans, now.Add(a.ttl))
	}
	return ans.verdict()
}

// fnAnswer is a function authorizer's decision, as cached.
type fnAnswer struct {
	allow  bool
	result *authResult
}

func (f *fnAnswer) verdict() (*authResult, error) {
	if !f.allow {
		return nil, forbidden("the function denied the identity")
	}
	return f.result, nil
}

func (a *functionAuthorizer) ask(ctx context.Context, cred string, x *exchange) (*fnAnswer, error) {
	fns := a.g.cfg.Functions
	if fns == nil {
		return nil, unavailable("function %q: the gateway was given no functions", a.function)
	}
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetType(AuthorizeEventType)
	e.SetSource("nubo/gateway")
	e.SetSubject(a.name)
	e.SetTime(x.start)
	req := AuthorizeRequest{Identity: cred, Authorizer: a.name, Method: x.r.Method, Route: x.route.path, Stage: x.stage.name}
	if err := e.SetData(event.ApplicationJSON, req); err != nil {
		return nil, unavailable("function %q: encode the request: %v", a.function, err)
	}
	res, err := fns.Invoke(ctx, a.function, e)
	if err != nil {
		return nil, unavailable("function %q: %v", a.function, err)
	}
	var out AuthorizeAnswer
	if err := json.Unmarshal(res.Body, &out); err != nil {
		return nil, unavailable("function %q: answer is not {\"allow\": bool, \"context\": {...}}: %v", a.function, err)
	}
	ans := &fnAnswer{allow: out.Allow}
	if out.Allow {
		ans.result = newAuthResult(out.Principal, "", out.Context)
	}
	return ans, nil
}

// answerCache keeps function authorizers' answers per identity (its
// SHA-256: the credential itself is not kept) until they expire.
type answerCache struct {
	mu      sync.Mutex // guards entries
	max     int
	entries map[[sha256.Size]byte]cachedAnswer
}

type cachedAnswer struct {
	ans     *fnAnswer
	expires time.Time
}

func newAnswerCache(max int) *answerCache {
	return &answerCache{max: max, entries: map[[sha256.Size]byte]cachedAnswer{}}
}

func (c *answerCache) get(id [sha256.Size]byte, now time.Time) (*fnAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return nil, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, id)
		return nil, false
	}
	return e.ans, true
}

func (c *answerCache) put(id [sha256.Size]byte, ans *fnAnswer, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Full: drop what expired, and if that is not enough, some entry
		// (map order): a cache miss costs a function call, not a mistake.
		now := expires.Add(-time.Nanosecond)
		for k, e := range c.entries {
			if e.expires.Before(now) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[id] = cachedAnswer{ans: ans, expires: expires}
}

// contextHeaders turns an authorizer's context into Nubo-Context-*
// headers, sorted by key: strings as they are, numbers and booleans
// written out, lists of strings joined with ",", anything else as JSON.
func contextHeaders(m map[string]any) []headerKV {
	out := make([]headerKV, 0, len(m))
	for _, k := range sortedKeys(m) {
		name := contextHeaderName(k)
		if name == "" {
			continue
		}
		out = append(out, headerKV{name: name, vals: []string{headerValue(m[k])}})
	}
	return out
}

// contextHeaderName is Nubo-Context-KEY with KEY made a header token:
// letters and digits kept, anything else a '-'.
func contextHeaderName(key string) string {
	b := []byte(key)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b[i] = '-'
		}
	}
	k := strings.Trim(string(b), "-")
	if k == "" {
		return ""
	}
	return http.CanonicalHeaderKey(HeaderContextPrefix + k)
}

func headerValue(v any) string {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case bool:
		s = strconv.FormatBool(t)
	case float64:
		s = strconv.FormatFloat(t, 'f', -1, 64)
	case json.Number:
		s = t.String()
	case int64:
		s = strconv.FormatInt(t, 10)
	case int:
		s = strconv.Itoa(t)
	case time.Time:
		s = strconv.FormatInt(t.Unix(), 10)
	case []string:
		s = strings.Join(t, ",")
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			if str, ok := e.(string); ok {
				parts = append(parts, str)
			}
		}
		if len(parts) == len(t) {
			s = strings.Join(parts, ",")
		} else {
			b, _ := json.Marshal(v)
			s = string(b)
		}
	default:
		b, _ := json.Marshal(v)
		s = string(b)
	}
	return headerSafe(s)
}

// headerSafe keeps a value to one line of printable characters.
func headerSafe(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) && len(s) <= 4096 {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	if len(b) > 4096 {
		b = b[:4096]
	}
	return string(b)
}

// newAuthResult builds a verdict with its headers, once per credential.
func newAuthResult(principal, keyName string, context map[string]any) *authResult {
	res := &authResult{principal: principal, keyName: keyName, context: context}
	if principal != "" {
		res.headers = append(res.headers, headerKV{HeaderPrincipal, []string{headerSafe(principal)}})
	}
	res.headers = append(res.headers, contextHeaders(context)...)
	return res
}

// applyAuth sets the authorizer's headers on the request to the backend.
// The slices are shared between requests: nothing appends to them.
func applyAuth(h http.Header, authorizerVals []string, res *authResult) {
	h[HeaderAuthorizer] = authorizerVals
	for _, kv := range res.headers {
		h[kv.name] = kv.vals
	}
}
