// Package edgeheader is what nubo's entries (the ingress, the gateway and
// the mesh) do to a request's headers so that a backend can trust them:
// identity headers come only from nubo, and X-Forwarded-* say what the
// edge saw.
//
// Identity headers are Nubo-Principal, Nubo-Authorizer and Nubo-Context-*,
// which the gateway sets from what an authorizer verified. A client's own
// are removed in every spelling a backend might read as the same header:
// any case, and "_" for "-" (CGI, PHP, WSGI and Rails turn both into
// HTTP_NUBO_PRINCIPAL).
//
// X-Forwarded-* are handled as Envoy does at an edge (use_remote_address
// with no trusted hops): the client's address is appended to
// X-Forwarded-For, and X-Forwarded-Proto and X-Forwarded-Host are set from
// the connection and the Host header, replacing whatever the client sent.
package edgeheader

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// IsIdentity reports whether a header name is an identity header in any
// spelling: Nubo-Principal, Nubo-Authorizer or Nubo-Context-*, in any case,
// with "_" for "-".
func IsIdentity(name string) bool {
	if len(name) < 5 || !equalName(name[:5], "nubo-") {
		return false
	}
	rest := name[5:]
	return equalName(rest, "principal") || equalName(rest, "authorizer") ||
		len(rest) >= 7 && equalName(rest[:7], "context")
}

// StripIdentity removes every identity header from h, in one pass over
// its names and without allocating.
func StripIdentity(h http.Header) {
	for k := range h {
		if IsIdentity(k) {
			delete(h, k)
		}
	}
}

// Edge prepares the headers of a request arriving from a client at one of
// nubo's edges (the ingress, or the gateway's own listener): identity
// headers stripped, the client's address appended to X-Forwarded-For, and
// X-Forwarded-Proto and X-Forwarded-Host set from the connection.
func Edge(r *http.Request) {
	StripIdentity(r.Header)
	Forwarded(r.Header, r)
}

// Forwarded sets X-Forwarded-For, -Proto and -Host on h, the headers of
// the request to the backend, from r as a client sent it to an edge: the
// client's address appended to X-Forwarded-For, the others replaced.
func Forwarded(h http.Header, r *http.Request) {
	// One allocation for the three values.
	vals := make([]string, 3)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		vals[0] = ip
		h["X-Forwarded-For"] = vals[0:1:1]
	}
	if r.TLS != nil {
		vals[1] = "https"
	} else {
		vals[1] = "http"
	}
	h["X-Forwarded-Proto"] = vals[1:2:2]
	if r.Host != "" {
		vals[2] = r.Host
		h["X-Forwarded-Host"] = vals[2:3:3]
	} else {
		delete(h, "X-Forwarded-Host")
	}
}

type edgeKey struct{}

// FromEdge marks r as having been through Edge at one of nubo's edges in
// this process (the ingress handing a request to the gateway), so that the
// next hop keeps its X-Forwarded-* headers instead of treating the request
// as a client's.
func FromEdge(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), edgeKey{}, true))
}

// IsFromEdge reports whether r was marked by FromEdge.
func IsFromEdge(r *http.Request) bool {
	v, _ := r.Context().Value(edgeKey{}).(bool)
	return v
}

// equalName compares a header name with a lower-case pattern, ignoring
// ASCII case and reading "_" as "-".
func equalName(name, pattern string) bool {
	if len(name) != len(pattern) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != pattern[i] {
			return false
		}
	}
	return true
}
