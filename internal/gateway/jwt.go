package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/nubo-dev/nubo/internal/readlimit"
	"github.com/nubo-dev/nubo/internal/spec"
)

// jwtLeeway is the clock skew allowed on exp, nbf and iat.
const jwtLeeway = 30 * time.Second

// Verified tokens are kept so that a client sending the same token again
// costs a map lookup, not a signature check: at most maxVerified of them
// (the least recently used go first), each until it expires or for
// verifiedFor, whichever is sooner (so that a key removed from the key set
// stops working within verifiedFor).
const (
	maxVerified = 10000
	verifiedFor = 5 * time.Minute
)

// jwtAuthorizer checks bearer tokens against a key set, an issuer, an
// audience and an allow-list of algorithms.
type jwtAuthorizer struct {
	g        *Gateway
	name     string
	src      identitySource
	issuer   string
	audience []string
	algs     map[string]jwa.SignatureAlgorithm
	keys     *keySource

	verified *verifiedCache
}

type verifiedToken struct {
	res     *authResult
	nbf     time.Time
	expires time.Time
}

func (g *Gateway) compileJWT(c *compiled, name string, a *spec.Authorizer, src identitySource) (*jwtAuthorizer, error) {
	if a.Issuer == "" {
		return nil, errors.New("a jwt authorizer needs issuer")
	}
	ja := &jwtAuthorizer{g: g, name: name, src: src, issuer: a.Issuer, audience: a.Audience,
		algs: map[string]jwa.SignatureAlgorithm{}, verified: newVerifiedCache(maxVerified)}
	algs := a.Algorithms
	if len(algs) == 0 {
		algs = []string{"RS256", "ES256"}
	}
	for _, name := range algs {
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok || alg == jwa.NoSignature() || strings.EqualFold(name, "none") {
			return nil, fmt.Errorf("algorithms: %q is not allowed", name)
		}
		ja.algs[name] = alg
	}
	var key string
	switch {
	case a.JWKS != "" && a.JWKSFile != "":
		return nil, errors.New("set jwks or jwksFile, not both")
	case a.JWKS != "":
		if !strings.HasPrefix(a.JWKS, "http://") && !strings.HasPrefix(a.JWKS, "https://") {
			return nil, fmt.Errorf("jwks %q: want an http(s) URL", a.JWKS)
		}
		key = "jwks|url|" + a.JWKS
	case a.JWKSFile != "":
		path := a.JWKSFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(g.cfg.App.Dir, path)
		}
		key = "jwks|file|" + path
	default:
		return nil, errors.New("a jwt authorizer needs jwks or jwksFile")
	}
	c.used[key] = true
	ja.keys = g.state.keySet(key, func() *keySource {
		ks := &keySource{g: g, log: g.log.With("authorizer", name)}
		if a.JWKS != "" {
			ks.url = a.JWKS
			// An issuer that is a service of the spec (http://auth/jwks)
			// is reached through the mesh, as its callers reach it.
			if u, err := url.Parse(a.JWKS); err == nil && u.Scheme == "http" && !strings.Contains(u.Hostname(), ".") &&
				(g.cfg.App.Services[u.Hostname()] != nil || g.cfg.App.Mesh.Routes[u.Hostname()] != nil) {
				ks.service, ks.path = u.Hostname(), u.RequestURI()
			}
		} else {
			ks.file = strings.TrimPrefix(key, "jwks|file|")
		}
		return ks
	})
	if ja.keys.file != "" {
		// A key-set file is part of the spec: a broken one fails the
		// load, as any other mistake in the spec does.
		if _, err := ja.keys.fetch(context.Background(), true); err != nil {
			return nil, err
		}
	}
	return ja, nil
}

func (a *jwtAuthorizer) authorize(ctx context.Context, x *exchange) (*authResult, error) {
	token := a.src.get(x.r)
	if a.src.header != "" {
		if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
			token = strings.TrimSpace(token[7:])
		}
	}
	if token == "" {
		return nil, missingCredential("no token in %s", a.src.text)
	}
	now := x.start
	if v, ok := a.verified.get(token, now); ok {
		if now.Add(jwtLeeway).Before(v.nbf) {
			return nil, unauthorized("token not valid yet (nbf)")
		}
		return v.res, nil
	}
	v, err := a.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	a.verified.put(token, v)
	return v.res, nil
}

// joseHeader is the part of a token's header checked before any key is
// looked up.
type joseHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

func (a *jwtAuthorizer) verify(ctx context.Context, token string, now time.Time) (verifiedToken, error) {
	head, _, ok := strings.Cut(token, ".")
	if !ok || strings.Count(token, ".") != 2 {
		return verifiedToken{}, unauthorized("not a JWS compact token")
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return verifiedToken{}, unauthorized("token header is not base64url")
	}
	var h joseHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return verifiedToken{}, unauthorized("token header is not JSON")
	}
	alg, allowed := a.algs[h.Alg]
	if !allowed || strings.EqualFold(h.Alg, "none") {
		return verifiedToken{}, unauthorized("algorithm %q is not allowed (allowed: %s)", h.Alg, strings.Join(sortedKeys(a.algs), ", "))
	}
	if len(h.Crit) > 0 {
		return verifiedToken{}, unauthorized("token has critical header parameters %v, which the gateway does not understand", h.Crit)
	}
	key, err := a.keys.key(ctx, h.Kid, h.Alg)
	if err != nil {
		return verifiedToken{}, err
	}
	tok, err := jwt.Parse([]byte(token),
		jwt.WithKey(alg, key),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(jwtLeeway),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithIssuer(a.issuer),
		jwt.WithRequiredClaim("exp"),
	)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "jwt.Parse: ")
		msg = strings.TrimPrefix(msg, "failed to parse token: ")
		return verifiedToken{}, unauthorized("token refused: %s", msg)
	}
	if len(a.audience) > 0 {
		aud, _ := tok.Audience()
		if !slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(a.audience, s) }) {
			return verifiedToken{}, unauthorized("token audience %q names none of %q", aud, a.audience)
		}
	}
	exp, _ := tok.Expiration()
	nbf, _ := tok.NotBefore()
	// The claims as JSON has them (aud a list, exp a number), which is
	// what headers and $request.authorizer show.
	claims := map[string]any{}
	if b, err := json.Marshal(tok); err == nil {
		_ = json.Unmarshal(b, &claims)
	}
	sub, _ := tok.Subject()
	expires := now.Add(verifiedFor)
	if e := exp.Add(jwtLeeway); e.Before(expires) {
		expires = e
	}
	return verifiedToken{res: newAuthResult(sub, "", claims), nbf: nbf, expires: expires}, nil
}

// keySource is a key set from a URL or a file, fetched on first use, again
// after Config.JWKSRefresh, and on a token with an unknown kid, but never
// twice within Config.JWKSMinRefresh after the first fetch.
type keySource struct {
	g    *Gateway
	log  *slog.Logger
	url  string
	file string
	// service and path are set when url names a service of the spec.
	service, path string

	cur atomic.Pointer[keySet]

	fetchMu sync.Mutex // serializes fetches; guards lastTry
	lastTry time.Time
}

type keySet struct {
	set jwk.Set
	at  time.Time
}

// key returns the key of kid that may verify alg.
func (k *keySource) key(ctx context.Context, kid, alg string) (jwk.Key, error) {
	now := k.g.now()
	ks := k.cur.Load()
	if ks == nil || now.Sub(ks.at) >= k.g.cfg.JWKSRefresh {
		fresh, err := k.fetch(ctx, ks == nil)
		switch {
		case err == nil:
			ks = fresh
		case ks == nil:
			return nil, unavailable("key set %s: %v", k.where(), err)
		default:
			k.log.Warn("gateway: refresh of the key set failed; the last one stays", "jwks", k.where(), "err", err)
		}
	}
	if key, err := pickKey(ks.set, kid, alg); err == nil || !errors.Is(err, errUnknownKid) {
		return key, err
	}
	// An unknown kid: the issuer may have rotated its keys.
	fresh, err := k.fetch(ctx, false)
	if err != nil {
		if !errors.Is(err, errTooSoon) {
			k.log.Warn("gateway: refresh of the key set failed", "jwks", k.where(), "err", err)
		}
		return nil, unauthorized("unknown key id %q", kid)
	}
	key, err := pickKey(fresh.set, kid, alg)
	if errors.Is(err, errUnknownKid) {
		return nil, unauthorized("unknown key id %q, also after fetching the key set again", kid)
	}
	return key, err
}

func (k *keySource) where() string {
	if k.url != "" {
		return k.url
	}
	return k.file
}

// maxJWKSSize bounds a key set, read from a file or a URL.
const maxJWKSSize = 1 << 20

// errTooSoon refuses a fetch within JWKSMinRefresh of the last one.
var errTooSoon = errors.New("key set fetched too recently")

// fetch gets the key set; unless force, not within JWKSMinRefresh of the
// last try. Concurrent callers wait for one fetch.
func (k *keySource) fetch(ctx context.Context, force bool) (*keySet, error) {
	before := k.cur.Load()
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if cur := k.cur.Load(); cur != before && cur != nil {
		return cur, nil // another request fetched it meanwhile
	}
	now := k.g.now()
	if !force && !k.lastTry.IsZero() && now.Sub(k.lastTry) < k.g.cfg.JWKSMinRefresh {
		return nil, errTooSoon
	}
	k.lastTry = now
	data, err := k.read(ctx)
	if err != nil {
		return nil, err
	}
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("key set %s: %w", k.where(), err)
	}
	ks := &keySet{set: set, at: now}
	k.cur.Store(ks)
	return ks, nil
}

func (k *keySource) read(ctx context.Context) ([]byte, error) {
	if k.file != "" {
		// A key set is a few KiB; the bound is what a JWKS URL may send.
		data, err := readlimit.File(k.file, maxJWKSSize)
		if err != nil {
			return nil, fmt.Errorf("jwksFile: %w", err)
		}
		return data, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	target := k.url
	if k.service != "" {
		if k.g.cfg.Services == nil {
			return nil, fmt.Errorf("fetch %s: service %q: the gateway was given no mesh", k.url, k.service)
		}
		base, err := k.g.cfg.Services.ServiceURL(k.service)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", k.url, err)
		}
		target = strings.TrimSuffix(base, "/") + k.path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.g.cfg.JWKSClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", k.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", k.url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize))
}

var errUnknownKid = errors.New("unknown kid")

// pickKey returns the signing key of kid (or the only one that fits alg,
// for a token without kid), checking that its type fits the algorithm: an
// RSA public key is never taken as an HMAC secret.
func pickKey(set jwk.Set, kid, alg string) (jwk.Key, error) {
	fits := func(key jwk.Key) bool {
		if u, ok := key.KeyUsage(); ok && u != "" && u != "sig" {
			return false
		}
		if ka, ok := key.Algorithm(); ok && ka.String() != "" && ka.String() != alg {
			return false
		}
		return key.KeyType() == keyTypeFor(alg)
	}
	if kid != "" {
		key, ok := set.LookupKeyID(kid)
		if !ok {
			return nil, fmt.Errorf("%w %q", errUnknownKid, kid)
		}
		if !fits(key) {
			return nil, unauthorized("key %q cannot verify %s", kid, alg)
		}
		return key, nil
	}
	var found jwk.Key
	for i := range set.Len() {
		key, _ := set.Key(i)
		if fits(key) {
			if found != nil {
				return nil, unauthorized("token has no kid and the key set has several %s keys", alg)
			}
			found = key
		}
	}
	if found == nil {
		return nil, unauthorized("token has no kid and no key of the set verifies %s", alg)
	}
	return found, nil
}

// keyTypeFor is the JWK key type an algorithm needs.
func keyTypeFor(alg string) jwa.KeyType {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		return jwa.RSA()
	case strings.HasPrefix(alg, "ES"):
		return jwa.EC()
	case alg == "EdDSA":
		return jwa.OKP()
	case strings.HasPrefix(alg, "HS"):
		return jwa.OctetSeq()
	}
	return jwa.InvalidKeyType()
}
