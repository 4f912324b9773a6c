package gateway

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/nubo-dev/nubo/internal/spec"
)

// corsPolicy is a route's CORS, compiled. It follows the Fetch standard's
// CORS protocol (https://fetch.spec.whatwg.org/#http-cors-protocol):
//
//   - A preflight is an OPTIONS request with Origin and
//     Access-Control-Request-Method. It is answered 204 by the gateway,
//     without authorization, with Access-Control-Allow-Origin (the origin,
//     or * when any origin is allowed without credentials),
//     -Allow-Methods, -Allow-Headers (the requested headers, all allowed),
//     -Allow-Credentials and -Max-Age; a preflight the policy refuses gets
//     403 without those headers, so the browser stops there.
//   - A CORS-safelisted method (GET, HEAD, POST) is allowed even when
//     allowMethods does not list it, as browsers do; * allows any method.
//   - allowHeaders "*" allows any header but Authorization, which must be
//     listed (the standard's wildcard never covers it).
//   - Other requests from an allowed origin get Access-Control-Allow-Origin,
//     -Allow-Credentials and -Expose-Headers; from another origin they are
//     served without them, and the browser keeps the answer from the page.
//   - Vary: Origin whenever the answer depends on the origin.
type corsPolicy struct {
	anyOrigin   bool
	origins     map[string]bool // lower case
	anyMethod   bool
	methods     map[string]bool
	methodsText string
	anyHeader   bool
	headers     map[string]bool // lower case
	expose      []string
	maxAge      []string
	credentials bool
}

func compileCORS(c *spec.CORS, rt *route) *corsPolicy {
	p := &corsPolicy{origins: map[string]bool{}, methods: map[string]bool{}, headers: map[string]bool{}, credentials: c.AllowCredentials}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			p.anyOrigin = true
		} else {
			p.origins[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
		}
	}
	methods := c.AllowMethods
	if len(methods) == 0 {
		methods = rt.methods
		p.anyMethod = rt.anyMethod
	}
	var list []string
	for _, m := range methods {
		if m == "*" {
			p.anyMethod = true
			continue
		}
		m = strings.ToUpper(m)
		if !p.methods[m] {
			p.methods[m] = true
			list = append(list, m)
		}
	}
	p.methodsText = strings.Join(list, ", ")
	for _, h := range c.AllowHeaders {
		if h == "*" {
			p.anyHeader = true
		} else {
			p.headers[strings.ToLower(h)] = true
		}
	}
	if len(c.ExposeHeaders) > 0 {
		p.expose = []string{strings.Join(c.ExposeHeaders, ", ")}
	}
	if c.MaxAge > 0 {
		p.maxAge = []string{strconv.Itoa(c.MaxAge)}
	}
	return p
}

var (
	starVals = []string{"*"}
	trueVals = []string{"true"}
)

// allowOrigin returns the Access-Control-Allow-Origin of origin, or false.
func (p *corsPolicy) allowOrigin(origin string) (string, bool) {
	if p.anyOrigin && !p.credentials {
		return "*", true
	}
	if p.origins[strings.ToLower(origin)] {
		return origin, true
	}
	return "", false
}

// actual adds the CORS headers of a request that is not a preflight.
func (p *corsPolicy) actual(h http.Header, origin string) {
	if !p.anyOrigin || p.credentials {
		h.Add("Vary", "Origin")
	}
	if origin == "" {
		return
	}
	acao, ok := p.allowOrigin(origin)
	if !ok {
		return
	}
	if acao == "*" {
		h["Access-Control-Allow-Origin"] = starVals
	} else {
		h["Access-Control-Allow-Origin"] = []string{acao}
	}
	if p.credentials {
		h["Access-Control-Allow-Credentials"] = trueVals
	}
	if p.expose != nil {
		h["Access-Control-Expose-Headers"] = p.expose
	}
}

// safelistedMethod is a CORS-safelisted method.
func safelistedMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "POST" }

// preflight answers a preflight under p; reason says why one is refused.
func (p *corsPolicy) preflight(w http.ResponseWriter, r *http.Request) (status int, reason string) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	acao, ok := p.allowOrigin(origin)
	if !ok {
		return http.StatusForbidden, "origin " + origin + " is not allowed"
	}
	if !p.anyMethod && !p.methods[method] && !safelistedMethod(method) {
		return http.StatusForbidden, "method " + method + " is not allowed"
	}
	var requested []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if !p.headers[name] && (!p.anyHeader || name == "authorization") {
				return http.StatusForbidden, "header " + name + " is not allowed"
			}
			requested = append(requested, name)
		}
	}
	h.Set("Access-Control-Allow-Origin", acao)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	switch {
	case p.anyMethod || (p.methodsText == "" && method != ""):
		h.Set("Access-Control-Allow-Methods", method)
	default:
		h.Set("Access-Control-Allow-Methods", p.methodsText)
	}
	if len(requested) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(requested, ", "))
	}
	if p.maxAge != nil {
		h["Access-Control-Max-Age"] = p.maxAge
	}
	h.Set("Content-Length", "0")
	return http.StatusNoContent, ""
}

// isPreflight says whether r is a CORS preflight.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}
