package mesh

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/urlpath"
)

// authz is the compiled authorization of one destination service: the
// policies whose `to` names it or "*", by action, in spec order.
type authz struct {
	audit, deny, allow []*policy
}

func (a *authz) empty() bool { return len(a.audit)+len(a.deny)+len(a.allow) == 0 }

// policy is one compiled rule: every part that is set must match.
type policy struct {
	name       string
	action     string
	principals []matcher // empty: any caller
	namespaces []matcher // empty: any namespace
	when       []condition
	// httpOnly says the rule looks at request attributes, which a TCP
	// tunnel does not have.
	httpOnly bool
}

type condKey uint8

const (
	keyMethod condKey = iota
	keyPath
	keyHeader
	keyNamespace
)

type condition struct {
	key    condKey
	header string // canonical, for keyHeader
	values []matcher
}

// matcher is an Istio string match: exact, "prefix*", "*suffix", or "*"
// for any non-empty value.
type matcher struct {
	kind  uint8 // 0 exact, 1 prefix, 2 suffix, 3 presence
	value string
}

func compileMatcher(v string) matcher {
	switch {
	case v == "*":
		return matcher{kind: 3}
	case strings.HasSuffix(v, "*"):
		return matcher{kind: 1, value: strings.TrimSuffix(v, "*")}
	case strings.HasPrefix(v, "*"):
		return matcher{kind: 2, value: strings.TrimPrefix(v, "*")}
	}
	return matcher{value: v}
}

func (m matcher) match(s string) bool {
	switch m.kind {
	case 1:
		return strings.HasPrefix(s, m.value)
	case 2:
		return strings.HasSuffix(s, m.value)
	case 3:
		return s != ""
	}
	return s == m.value
}

func anyMatch(ms []matcher, s string) bool {
	for _, m := range ms {
		if m.match(s) {
			return true
		}
	}
	return false
}

func (c *compiled) compilePolicies(ps []*spec.Policy) error {
	for i, p := range ps {
		if p == nil {
			continue
		}
		cp, err := compilePolicy(p)
		if err != nil {
			return fmt.Errorf("mesh: policy %d (%q): %w", i, p.Name, err)
		}
		if p.To != "*" {
			if _, ok := c.services[p.To]; !ok {
				return fmt.Errorf("mesh: policy %q: no service %q", p.Name, p.To)
			}
		}
		for _, name := range sortedKeys(c.services) {
			if p.To != "*" && p.To != name {
				continue
			}
			a := &c.services[name].authz
			switch cp.action {
			case "audit":
				a.audit = append(a.audit, cp)
			case "deny":
				a.deny = append(a.deny, cp)
			case "allow":
				a.allow = append(a.allow, cp)
			}
		}
	}
	return nil
}

func compilePolicy(p *spec.Policy) (*policy, error) {
	cp := &policy{name: p.Name, action: p.Action}
	switch p.Action {
	case "allow", "deny", "audit":
	default:
		return nil, fmt.Errorf("action %q: want allow, deny or audit", p.Action)
	}
	for _, pr := range p.From.Principals {
		cp.principals = append(cp.principals, compileMatcher(pr))
	}
	for _, ns := range p.From.Namespaces {
		cp.namespaces = append(cp.namespaces, compileMatcher(ns))
	}
	for j, w := range p.When {
		if w == nil {
			continue
		}
		cond := condition{}
		switch {
		case w.Key == "request.method":
			cond.key = keyMethod
		case w.Key == "request.path":
			cond.key = keyPath
		case w.Key == "source.namespace":
			cond.key = keyNamespace
		case strings.HasPrefix(w.Key, "request.headers[") && strings.HasSuffix(w.Key, "]") && len(w.Key) > len("request.headers[]"):
			cond.key = keyHeader
			cond.header = canonicalHeader(w.Key[len("request.headers[") : len(w.Key)-1])
		default:
			return nil, fmt.Errorf("when[%d]: key %q: want request.method, request.path, request.headers[NAME] or source.namespace", j, w.Key)
		}
		if len(w.Values) == 0 {
			return nil, fmt.Errorf("when[%d]: key %q has no values", j, w.Key)
		}
		for _, v := range w.Values {
			cond.values = append(cond.values, compileMatcher(v))
		}
		cp.httpOnly = cp.httpOnly || cond.key != keyNamespace
		cp.when = append(cp.when, cond)
	}
	return cp, nil
}

// peer is who calls: the principal of the listener the request came in on,
// and its namespace.
type peer struct {
	principal string
	namespace string
}

// matches reports whether the policy's rule matches a request (r nil for a
// TCP tunnel). For a tunnel, Istio's TCP semantics apply: an allow rule
// with HTTP-only conditions never matches, and a deny rule ignores them
// and so matches on its other fields.
func (p *policy) matches(src peer, r *http.Request, deny bool) bool {
	if len(p.principals) > 0 && !p.matchPrincipal(src) {
		return false
	}
	if len(p.namespaces) > 0 && !anyMatch(p.namespaces, src.namespace) {
		return false
	}
	if r == nil && p.httpOnly && !deny {
		return false
	}
	for i := range p.when {
		c := &p.when[i]
		var v string
		switch c.key {
		case keyNamespace:
			v = src.namespace
		case keyMethod:
			if r == nil {
				continue
			}
			v = r.Method
		case keyPath:
			if r == nil {
				continue
			}
			v = policyPath(r)
		case keyHeader:
			if r == nil {
				continue
			}
			v = strings.Join(r.Header[c.header], ",")
		}
		if !anyMatch(c.values, v) {
			return false
		}
	}
	return true
}

// matchPrincipal matches the caller's name, or the SPIFFE-style identity
// Istio uses (cluster.local/ns/NS/sa/NAME), so that policies written for
// Kubernetes work unchanged.
func (p *policy) matchPrincipal(src peer) bool {
	if src.principal == "" {
		return false // unauthenticated: not even "*" matches, as in Istio
	}
	for _, m := range p.principals {
		if m.match(src.principal) || (strings.Contains(m.value, "/") && m.match(spiffeID(src))) {
			return true
		}
	}
	return false
}

func spiffeID(src peer) string {
	if src.principal == IngressPrincipal {
		return "cluster.local/ns/" + ingressNamespace + "/sa/" + ingressAccount
	}
	return "cluster.local/ns/" + src.namespace + "/sa/" + src.principal
}

// policyPath is the request path policies see: without the query and in
// the normal form every entry gives it before authorization (dot segments
// resolved, slashes merged), as Istio normalizes paths. The entries have
// already cleaned it; cleaning again costs nothing on a clean path and
// keeps a policy from seeing another path should a caller not have.
func policyPath(r *http.Request) string {
	p, err := urlpath.Clean(r.URL.Path, r.URL.RawPath)
	switch {
	case err != nil:
		// Unreachable through the entries, which refuse such a path.
		return r.URL.Path
	case p == "":
		return "/" // what an empty path is on the wire
	}
	return p
}

// decision is the outcome of authorization.
type decision struct {
	allowed bool
	policy  string // the deny policy that matched, or "" (no allow matched)
	audited string // the audit policy that matched, if any
}

// check runs Istio's order: audit policies mark a request for the audit
// log without deciding; then any matching deny policy denies; then, when
// allow policies select the service, one of them must match.
func (a *authz) check(src peer, r *http.Request) decision {
	d := decision{allowed: true}
	for _, p := range a.audit {
		if p.matches(src, r, false) {
			d.audited = p.name
			break
		}
	}
	for _, p := range a.deny {
		if p.matches(src, r, true) {
			d.allowed, d.policy = false, p.name
			return d
		}
	}
	if len(a.allow) == 0 {
		return d
	}
	for _, p := range a.allow {
		if p.matches(src, r, false) {
			return d
		}
	}
	d.allowed = false
	return d
}
