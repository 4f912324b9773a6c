package spec

import (
	"regexp"
	"strings"
)

// routeParamRe is one templated segment of a route path: {id}, or the greedy
// {proxy+} that takes the rest of the path.
var routeParamRe = regexp.MustCompile(`^\{([A-Za-z0-9_.-]+)(\+?)\}$`)

// gatewaySemantics checks authorizers, stages and routes. References to
// authorizers, models, services and functions are checked by checkReferences.
func gatewaySemantics(r *report, g *Gateway) {
	for _, name := range sortedKeys(g.Authorizers) {
		authorizerSemantics(r, joinPath("gateway.authorizers", name), g.Authorizers[name])
	}
	for _, name := range sortedKeys(g.Stages) {
		if t := g.Stages[name].Throttle; t != nil {
			throttleSemantics(r, joinPath("gateway.stages", name)+".throttle", t)
		}
	}
	type routed struct {
		method string // "ANY" for all methods
		route  int
	}
	seen := map[string][]routed{} // path with its parameters unnamed -> routes
	for i, rt := range g.Routes {
		p := indexPath("gateway.routes", i)
		params, ok := routePathSemantics(r, p+".path", rt.Path)
		if ok {
			key := routeShape(rt.Path)
			methods := rt.Methods
			if len(methods) == 0 || contains(methods, "ANY") {
				methods = []string{"ANY"}
			}
		dup:
			for _, m := range methods {
				for _, prev := range seen[key] {
					if m == prev.method || m == "ANY" || prev.method == "ANY" {
						r.errorf(p+".path", "%s %s is already routed by %s", m, rt.Path, indexPath("gateway.routes", prev.route))
						break dup
					}
				}
			}
			for _, m := range methods {
				seen[key] = append(seen[key], routed{m, i})
			}
		}
		integrationSemantics(r, p+".integration", &rt.Integration)
		if c := rt.Cache; c != nil && ok {
			for j, k := range c.Keys {
				cacheKeySemantics(r, indexPath(p+".cache.keys", j), k, rt.Path, params)
			}
		}
		if c := rt.CORS; c != nil && c.AllowCredentials && contains(c.AllowOrigins, "*") {
			r.errorf(p+".cors.allowCredentials", `allowCredentials cannot go with allowOrigins "*": browsers refuse it; list the origins`)
		}
		if t := rt.Throttle; t != nil {
			throttleSemantics(r, p+".throttle", t)
		}
		if rs := rt.Response; rs != nil {
			for j, sc := range rs.StatusCodes {
				checkStatus(r, indexPath(p+".response.statusCodes", j)+".status", sc.Status)
			}
		}
	}
}

func authorizerSemantics(r *report, p string, au *Authorizer) {
	switch au.Type {
	case "jwt":
		switch {
		case au.JWKS == "" && au.JWKSFile == "":
			r.objectErrorf(p, "a jwt authorizer needs jwks or jwksFile")
		case au.JWKS != "" && au.JWKSFile != "":
			r.errorf(p+".jwksFile", "set jwks or jwksFile, not both")
		}
		if au.Issuer == "" {
			r.objectErrorf(p, "a jwt authorizer needs issuer")
		}
	case "apiKey":
		if au.Keys == nil {
			r.objectErrorf(p, "an apiKey authorizer needs keys: {secret: NAME}")
		}
	case "function":
		if au.Function == "" {
			r.objectErrorf(p, "a function authorizer needs function")
		}
	}
	if src := au.IdentitySource; src != "" {
		kind, name, _ := strings.Cut(src, ".")
		if (kind != "header" && kind != "query") || name == "" {
			r.errorf(p+".identitySource", "identitySource %q: write header.NAME or query.NAME", src)
		}
	}
}

func throttleSemantics(r *report, p string, t *Throttle) {
	if t.Rate <= 0 {
		r.errorf(p+".rate", "rate must be more than 0 requests per second, not %g", t.Rate)
	}
	checkAtLeast(r, p+".burst", "burst", t.Burst, 0)
}

func checkStatus(r *report, path string, status int) {
	if status < 100 || status > 599 {
		r.errorf(path, "status %d is not an HTTP status (100..599)", status)
	}
}

// routePathSemantics checks a route path template and returns its parameter
// names; ok is false when the path is too broken to compare with others.
func routePathSemantics(r *report, path, tmpl string) (params []string, ok bool) {
	if tmpl == "" {
		return nil, false // missing: the decoder says so
	}
	if !strings.HasPrefix(tmpl, "/") {
		r.errorf(path, "route path %q must start with /", tmpl)
		return nil, false
	}
	segs := strings.Split(tmpl[1:], "/")
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		m := routeParamRe.FindStringSubmatch(seg)
		if m == nil {
			r.errorf(path, "segment %q of %s: a parameter is a whole segment, {name} or {name+}", seg, tmpl)
			return nil, false
		}
		if m[2] == "+" && i != len(segs)-1 {
			r.errorf(path, "%s takes the rest of the path, so it must be the last segment of %s", seg, tmpl)
			return nil, false
		}
		params = append(params, m[1])
	}
	return params, true
}

// routeShape is a route path with its parameters unnamed: /users/{id} and
// /users/{userId} match the same requests.
func routeShape(tmpl string) string {
	segs := strings.Split(tmpl, "/")
	for i, seg := range segs {
		if m := routeParamRe.FindStringSubmatch(seg); m != nil {
			segs[i] = "{" + m[2] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func cacheKeySemantics(r *report, path, key, tmpl string, params []string) {
	kind, name, _ := strings.Cut(key, ".")
	switch {
	case name == "" || (kind != "path" && kind != "query" && kind != "header"):
		r.errorf(path, "cache key %q: write path.NAME, query.NAME or header.NAME", key)
	case kind == "path" && !contains(params, name):
		if len(params) == 0 {
			r.errorf(path, "cache key %q: the route path %s has no parameters", key, tmpl)
		} else {
			r.errorf(path, "cache key %q: the route path %s has no parameter %q%s", key, tmpl, name, refHint(name, params))
		}
	}
}

// integrationSemantics checks that an integration sets the field its type
// needs and none that another type uses.
func integrationSemantics(r *report, p string, in *Integration) {
	fields := []struct {
		name, value string
	}{{"service", in.Service}, {"function", in.Function}, {"url", in.URL}}
	need := map[string]string{"service": "service", "function": "function", "http": "url"}[in.Type]
	what := map[string]string{"service": "a service", "function": "a function", "http": "an http", "mock": "a mock"}[in.Type]
	if what == "" {
		return // missing or not an enum value: the decoder says so
	}
	for _, f := range fields {
		switch {
		case f.name == need && f.value == "":
			r.objectErrorf(p, "%s integration needs %s", what, f.name)
		case f.name != need && f.value != "":
			r.errorf(p+"."+f.name, "%s integration does not use %s", what, f.name)
		}
	}
	if in.Type == "http" && in.URL != "" && !strings.HasPrefix(in.URL, "http://") && !strings.HasPrefix(in.URL, "https://") {
		r.errorf(p+".url", "url %q must start with http:// or https://", in.URL)
	}
	if in.Type == "mock" {
		checkStatus(r, p+".status", in.Status)
	}
}
