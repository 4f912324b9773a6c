package gateway

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/itchyny/gojq"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/time/rate"

	"github.com/nubo-dev/nubo/internal/spec"
)

// defaultStage is the stage without a path prefix, and the name of the one
// stage of a spec that declares none.
const defaultStage = "$default"

// Defaults of the spec, again here for specs built without spec.Load.
const (
	defaultCacheTTL    = 300 * time.Second
	defaultCacheSize   = 64 << 20
	defaultMaxBody     = 1 << 20
	defaultTimeout     = 29 * time.Second
	defaultAuthTTL     = 300 * time.Second
	maxBufferedAnswer  = 10 << 20 // a backend answer the gateway must read whole
	defaultIdentityHdr = "Authorization"
)

// compiled is one configuration of the gateway, immutable once built
// (apart from the lazily resolved service URLs).
type compiled struct {
	app    *spec.App
	stages []*stage
	// byName holds the prefixed stages; def the unprefixed one, if any.
	byName map[string]*stage
	def    *stage
	root   *node
	routes []*route
	// used names what this configuration keeps in the carried state.
	used map[string]bool

	svcMu    sync.Mutex          // guards svcBases
	svcBases map[string]*url.URL // service -> base URL through the mesh
}

// stage is a compiled stage.
type stage struct {
	name   string
	prefix string // "/prod"; "" for $default
	index  int
	vars   map[string]string
	// throttle is the stage's bucket; nil without a throttle.
	throttle *bucket
	// cache holds the stage's cached answers; nil when no route of the
	// stage is cached.
	cache *respCache
	// cacheTTL is the stage's TTL; cacheOn says the stage caches every
	// GET and HEAD route.
	cacheTTL time.Duration
	cacheOn  bool
}

// route is a compiled route, with its per-stage parts in perStage.
type route struct {
	index     int
	path      string
	methods   []string
	anyMethod bool
	params    []string
	// muxPattern is the template as net/http writes it, for function
	// events' pathParameters.
	muxPattern string
	authName   string
	auth       authorizer
	authVals   []string // Nubo-Authorizer's value
	authObs    *authCounters
	cors       *corsPolicy
	request    *requestPolicy
	response   *responsePolicy
	perStage   []*routeStage
}

func (rt *route) name() string {
	return fmt.Sprintf("gateway.routes[%d] (%s %s)", rt.index, rt.methodList(), rt.path)
}

func (rt *route) methodList() string {
	if rt.anyMethod {
		return "ANY"
	}
	return strings.Join(rt.methods, ",")
}

// param returns the value of the named parameter among vals.
func (rt *route) param(vals []string, name string) string {
	for i, p := range rt.params {
		if p == name && i < len(vals) {
			return vals[i]
		}
	}
	return ""
}

// routeStage is a route as one stage serves it: stage variables resolved,
// its own buckets and cache settings, its metrics.
type routeStage struct {
	route *route
	stage *stage
	integ integration
	// throttle is the route's bucket in this stage; with an apiKey
	// authorizer, keyThrottle holds one per key instead.
	throttle    *bucket
	keyThrottle map[string]*bucket
	// cacheTTL > 0 caches this route's GET and HEAD 200s.
	cacheTTL  time.Duration
	cacheKeys []cacheKeyPart
	// responseHeaders are response.headers with stage variables resolved.
	responseHeaders http.Header
	obs             *routeObs
}

// requestPolicy is a route's request part.
type requestPolicy struct {
	requiredHeaders []string
	requiredQuery   []string
	maxBody         int64
	model           string
	modelType       string
	schema          *jsonschema.Schema
	transform       *gojq.Code
}

// responsePolicy is a route's response part (headers are per stage).
type responsePolicy struct {
	transform   *gojq.Code
	statusCodes []statusMapping
}

type statusMapping struct {
	re     *regexp.Regexp
	status int
}

// compile builds a configuration from app. It does no I/O beyond reading
// jwksFiles and secret values.
func (g *Gateway) compile(app *spec.App) (*compiled, error) {
	c := &compiled{app: app, byName: map[string]*stage{}, root: &node{}, used: map[string]bool{}, svcBases: map[string]*url.URL{}}
	gw := app.Gateway
	if gw == nil {
		return c, nil
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("gateway: "+format, args...)
	}
	if err := c.compileStages(g, gw); err != nil {
		return nil, fail("%w", err)
	}
	auths := map[string]authorizer{}
	for _, name := range sortedKeys(gw.Authorizers) {
		a, err := g.compileAuthorizer(c, name, gw.Authorizers[name])
		if err != nil {
			return nil, fail("authorizer %q: %w", name, err)
		}
		auths[name] = a
	}
	models := map[string]*jsonschema.Schema{}
	for _, name := range sortedKeys(gw.Models) {
		sch, err := spec.CompileSchema("models/"+name, gw.Models[name].Schema)
		if err != nil {
			return nil, fail("model %q: %w", name, err)
		}
		models[name] = sch
	}
	for i, sr := range gw.Routes {
		rt, err := g.compileRoute(c, i, sr, auths, models)
		if err != nil {
			return nil, fail("routes[%d] (%s): %w", i, sr.Path, err)
		}
		if err := c.root.insert(rt); err != nil {
			return nil, fail("routes[%d]: %w", i, err)
		}
		c.routes = append(c.routes, rt)
	}
	return c, nil
}

func (c *compiled) compileStages(g *Gateway, gw *spec.Gateway) error {
	names := sortedKeys(gw.Stages)
	if len(names) == 0 {
		names = []string{defaultStage}
	}
	anyRouteCache := slices.ContainsFunc(gw.Routes, func(r *spec.GatewayRoute) bool { return r.Cache != nil })
	for i, name := range names {
		st := &stage{name: name, index: i, vars: map[string]string{}}
		if name != defaultStage {
			if strings.ContainsAny(name, "/{}") || name == "" {
				return fmt.Errorf("stage %q: a stage name is one path segment", name)
			}
			st.prefix = "/" + name
			c.byName[name] = st
		} else {
			c.def = st
		}
		ss := gw.Stages[name]
		size := int64(defaultCacheSize)
		encrypted := false
		st.cacheTTL = defaultCacheTTL
		if ss != nil {
			for k, v := range ss.Variables {
				st.vars[k] = v
			}
			if t := ss.Throttle; t != nil {
				b, err := g.bucket(c, "stage|"+name, t)
				if err != nil {
					return fmt.Errorf("stage %q: throttle: %w", name, err)
				}
				st.throttle = b
			}
			if ch := ss.Cache; ch != nil {
				st.cacheOn = ch.Enabled
				if ch.TTL.Duration > 0 {
					st.cacheTTL = ch.TTL.Duration
				}
				if ch.Size.IsSet() {
					size = ch.Size.Value()
				}
				encrypted = ch.Encrypted
			}
		}
		if st.cacheOn || anyRouteCache {
			st.cache = newRespCache(size, encrypted, g)
		}
		c.stages = append(c.stages, st)
	}
	return nil
}

func (g *Gateway) compileRoute(c *compiled, i int, sr *spec.GatewayRoute, auths map[string]authorizer, models map[string]*jsonschema.Schema) (*route, error) {
	params, err := checkTemplate(sr.Path)
	if err != nil {
		return nil, err
	}
	rt := &route{index: i, path: sr.Path, params: params, muxPattern: muxPattern(sr.Path)}
	for _, m := range sr.Methods {
		m = strings.ToUpper(m)
		if m == "ANY" {
			rt.anyMethod = true
		}
		if !slices.Contains(rt.methods, m) {
			rt.methods = append(rt.methods, m)
		}
	}
	if len(rt.methods) == 0 {
		rt.anyMethod = true
	}
	if rt.anyMethod {
		rt.methods = nil
	}
	if sr.Authorizer != "" {
		rt.auth = auths[sr.Authorizer]
		if rt.auth == nil {
			return nil, fmt.Errorf("unknown authorizer %q", sr.Authorizer)
		}
		rt.authName = sr.Authorizer
		rt.authVals = []string{sr.Authorizer}
		rt.authObs = g.met.authorizer(sr.Authorizer)
	}
	if sr.CORS != nil {
		if sr.CORS.AllowCredentials && slices.Contains(sr.CORS.AllowOrigins, "*") {
			return nil, errors.New(`cors: allowCredentials cannot go with allowOrigins "*": browsers refuse it`)
		}
		rt.cors = compileCORS(sr.CORS, rt)
	}
	if rq := sr.Request; rq != nil {
		if rt.request, err = compileRequest(c.app.Gateway, rq, models); err != nil {
			return nil, err
		}
	}
	if rs := sr.Response; rs != nil {
		rp := &responsePolicy{}
		if rs.Transform != "" {
			if rp.transform, err = compileJQ(rs.Transform); err != nil {
				return nil, fmt.Errorf("response.transform: %w", err)
			}
		}
		for j, sc := range rs.StatusCodes {
			re, err := regexp.Compile(sc.Pattern)
			if err != nil {
				return nil, fmt.Errorf("response.statusCodes[%d]: pattern %q: %w", j, sc.Pattern, err)
			}
			if sc.Status < 100 || sc.Status > 599 {
				return nil, fmt.Errorf("response.statusCodes[%d]: status %d is not an HTTP status", j, sc.Status)
			}
			rp.statusCodes = append(rp.statusCodes, statusMapping{re: re, status: sc.Status})
		}
		rt.response = rp
	}
	var cacheKeys []cacheKeyPart
	if sr.Cache != nil {
		for _, k := range sr.Cache.Keys {
			part, err := parseCacheKey(k, params)
			if err != nil {
				return nil, fmt.Errorf("cache.keys: %w", err)
			}
			cacheKeys = append(cacheKeys, part)
		}
	}
	for _, st := range c.stages {
		rs, err := g.compileRouteStage(c, rt, sr, st)
		if err != nil {
			if len(c.stages) > 1 || st.name != defaultStage {
				return nil, fmt.Errorf("stage %q: %w", st.name, err)
			}
			return nil, err
		}
		rs.cacheKeys = cacheKeys
		rt.perStage = append(rt.perStage, rs)
	}
	return rt, nil
}

func (g *Gateway) compileRouteStage(c *compiled, rt *route, sr *spec.GatewayRoute, st *stage) (*routeStage, error) {
	rs := &routeStage{route: rt, stage: st, obs: g.met.route(st.name, rt.path)}
	rs.obs.prepare(sr.Integration.Type)
	lookup := func(expr string) (string, error) {
		if name, ok := strings.CutPrefix(expr, "stage."); ok {
			v, ok := st.vars[name]
			if !ok {
				return "", fmt.Errorf("${%s}: stage %q has no variable %q", expr, st.name, name)
			}
			return v, nil
		}
		if g.cfg.Resolve == nil {
			return "", fmt.Errorf("${%s}: the gateway resolves only ${stage.NAME} here", expr)
		}
		return g.cfg.Resolve(expr)
	}
	var err error
	if rs.integ, err = g.compileIntegration(c, rt, &sr.Integration, lookup); err != nil {
		return nil, fmt.Errorf("integration: %w", err)
	}
	if sr.Response != nil && len(sr.Response.Headers) > 0 {
		rs.responseHeaders = http.Header{}
		for _, k := range sortedKeys(sr.Response.Headers) {
			v, err := spec.Interpolate(sr.Response.Headers[k], lookup)
			if err != nil {
				return nil, fmt.Errorf("response.headers.%s: %w", k, err)
			}
			rs.responseHeaders.Set(k, v)
		}
	}
	if t := sr.Throttle; t != nil {
		id := "route|" + st.name + "|" + rt.methodList() + " " + rt.path
		if ka, ok := rt.auth.(*apiKeyAuthorizer); ok {
			rs.keyThrottle = map[string]*bucket{}
			for _, name := range ka.names {
				b, err := g.bucket(c, id+"|key|"+ka.secret+"/"+name, t)
				if err != nil {
					return nil, fmt.Errorf("throttle: %w", err)
				}
				rs.keyThrottle[name] = b
			}
		} else if rs.throttle, err = g.bucket(c, id, t); err != nil {
			return nil, fmt.Errorf("throttle: %w", err)
		}
	}
	switch {
	case sr.Cache != nil && sr.Cache.TTL.Duration > 0:
		rs.cacheTTL = sr.Cache.TTL.Duration
	case sr.Cache != nil:
		rs.cacheTTL = st.cacheTTL
	case st.cacheOn:
		rs.cacheTTL = st.cacheTTL
	}
	return rs, nil
}

func compileRequest(gw *spec.Gateway, rq *spec.GatewayRequest, models map[string]*jsonschema.Schema) (*requestPolicy, error) {
	p := &requestPolicy{maxBody: defaultMaxBody}
	for _, h := range rq.Required.Headers {
		p.requiredHeaders = append(p.requiredHeaders, http.CanonicalHeaderKey(h))
	}
	p.requiredQuery = append(p.requiredQuery, rq.Required.Query...)
	if rq.MaxBodySize.IsSet() {
		p.maxBody = rq.MaxBodySize.Value()
	}
	if rq.Model != "" {
		m := gw.Models[rq.Model]
		if m == nil || models[rq.Model] == nil {
			return nil, fmt.Errorf("request.model: unknown model %q", rq.Model)
		}
		p.model, p.schema = rq.Model, models[rq.Model]
		p.modelType = strings.ToLower(m.ContentType)
		if p.modelType == "" {
			p.modelType = "application/json"
		}
	}
	if rq.Transform != "" {
		code, err := compileJQ(rq.Transform, "$request")
		if err != nil {
			return nil, fmt.Errorf("request.transform: %w", err)
		}
		p.transform = code
	}
	return p, nil
}

// compileJQ compiles a jq program. $ENV and env read nothing: nubo's
// environment holds secrets, and a spec's jq must not copy them into
// requests or answers.
func compileJQ(src string, vars ...string) (*gojq.Code, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", src, err)
	}
	opts := []gojq.CompilerOption{gojq.WithEnvironLoader(func() []string { return nil })}
	if len(vars) > 0 {
		opts = append(opts, gojq.WithVariables(vars))
	}
	code, err := gojq.Compile(q, opts...)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", src, err)
	}
	return code, nil
}

// muxPattern writes a route template as a net/http pattern: {proxy+} is
// {proxy...}.
func muxPattern(tmpl string) string {
	segs := templateSegments(tmpl)
	for i, s := range segs {
		if isGreedy(s) {
			segs[i] = "{" + paramName(s) + "...}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// bucket returns the token bucket named id, kept across reloads while its
// rate and burst stay the same.
func (g *Gateway) bucket(c *compiled, id string, t *spec.Throttle) (*bucket, error) {
	if t.Rate <= 0 || math.IsNaN(t.Rate) || math.IsInf(t.Rate, 0) {
		return nil, fmt.Errorf("rate must be more than 0 requests per second, not %g", t.Rate)
	}
	burst := t.Burst
	if burst <= 0 {
		burst = int(math.Ceil(t.Rate))
	}
	key := fmt.Sprintf("%s|%g|%d", id, t.Rate, burst)
	c.used[key] = true
	return g.state.bucket(key, func() *bucket {
		return &bucket{lim: rate.NewLimiter(rate.Limit(t.Rate), burst), rate: t.Rate}
	}), nil
}

// stageOf splits a request path into its stage and the path within it.
func (c *compiled) stageOf(path string) (*stage, string) {
	if len(c.byName) > 0 && len(path) > 1 {
		seg := path[1:]
		rest := "/"
		if i := strings.IndexByte(seg, '/'); i >= 0 {
			seg, rest = seg[:i], seg[i:]
		}
		if st := c.byName[seg]; st != nil {
			return st, rest
		}
	}
	if c.def != nil {
		return c.def, path
	}
	return nil, ""
}
