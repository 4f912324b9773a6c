package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/nubo-dev/nubo/internal/edgeheader"
	"github.com/nubo-dev/nubo/internal/mesh/localca"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/urlpath"
)

// ingressTable routes by host, then by longest path prefix, as a
// Kubernetes Ingress does: exact hosts first, then wildcards (*.example.com
// matches one more label), then rules without a host.
type ingressTable struct {
	exact    map[string]*ingressHost
	wildcard []*ingressHost // by suffix length, longest first
	any      *ingressHost
}

type ingressHost struct {
	suffix string // ".example.com" for a wildcard
	paths  []ingressPath
}

// ingressPath is a Prefix path of the Kubernetes Ingress API: "/api"
// matches /api and /api/... but not /apis.
type ingressPath struct {
	prefix  string // without a trailing slash; "" for "/"
	ingress string
	gateway bool
	svc     *service
}

func (p *ingressPath) match(path string) bool {
	if p.prefix == "" {
		return true
	}
	return strings.HasPrefix(path, p.prefix) && (len(path) == len(p.prefix) || path[len(p.prefix)] == '/')
}

func compileIngress(c *compiled, ins []*spec.Ingress) (plain, secure *ingressTable, err error) {
	plain, secure = newIngressTable(), newIngressTable()
	for i, in := range ins {
		if in == nil {
			continue
		}
		host := strings.ToLower(strings.TrimSuffix(in.Host, "."))
		var paths []ingressPath
		for j, p := range in.Paths {
			if p == nil {
				continue
			}
			if !strings.HasPrefix(p.Path, "/") {
				return nil, nil, fmt.Errorf("mesh: ingress %q: paths[%d]: path %q does not start with /", in.Name, j, p.Path)
			}
			ip := ingressPath{prefix: strings.TrimRight(p.Path, "/"), ingress: in.Name}
			switch {
			case p.To == "gateway":
				ip.gateway = true
			case strings.HasPrefix(p.To, "service:"):
				name := strings.TrimPrefix(p.To, "service:")
				svc, ok := c.services[name]
				if !ok {
					return nil, nil, fmt.Errorf("mesh: ingress %q: paths[%d]: no service %q", in.Name, j, name)
				}
				ip.svc = svc
			default:
				return nil, nil, fmt.Errorf("mesh: ingress %q: paths[%d]: to %q: want gateway or service:NAME", in.Name, j, p.To)
			}
			paths = append(paths, ip)
		}
		if in.Name == "" {
			return nil, nil, fmt.Errorf("mesh: ingress[%d]: no name", i)
		}
		plain.add(host, paths)
		if in.TLS {
			secure.add(host, paths)
		}
	}
	plain.finish()
	secure.finish()
	return plain, secure, nil
}

func newIngressTable() *ingressTable { return &ingressTable{exact: map[string]*ingressHost{}} }

func (t *ingressTable) add(host string, paths []ingressPath) {
	var h *ingressHost
	switch {
	case host == "" || host == "*":
		if t.any == nil {
			t.any = &ingressHost{}
		}
		h = t.any
	case strings.HasPrefix(host, "*."):
		suffix := host[1:]
		for _, w := range t.wildcard {
			if w.suffix == suffix {
				h = w
			}
		}
		if h == nil {
			h = &ingressHost{suffix: suffix}
			t.wildcard = append(t.wildcard, h)
		}
	default:
		if h = t.exact[host]; h == nil {
			h = &ingressHost{}
			t.exact[host] = h
		}
	}
	h.paths = append(h.paths, paths...)
}

// finish orders paths longest first (stable, so the first rule written
// wins a tie) and wildcards by specificity.
func (t *ingressTable) finish() {
	sortPaths := func(h *ingressHost) {
		sort.SliceStable(h.paths, func(i, j int) bool { return len(h.paths[i].prefix) > len(h.paths[j].prefix) })
	}
	for _, h := range t.exact {
		sortPaths(h)
	}
	for _, h := range t.wildcard {
		sortPaths(h)
	}
	if t.any != nil {
		sortPaths(t.any)
	}
	sort.SliceStable(t.wildcard, func(i, j int) bool { return len(t.wildcard[i].suffix) > len(t.wildcard[j].suffix) })
}

func (t *ingressTable) empty() bool {
	return len(t.exact) == 0 && len(t.wildcard) == 0 && t.any == nil
}

// route finds the path rule for a host (without port, lower-case) and path.
func (t *ingressTable) route(host, path string) *ingressPath {
	if h := t.exact[host]; h != nil {
		if p := h.match(path); p != nil {
			return p
		}
	}
	for _, w := range t.wildcard {
		if w.covers(host) {
			if p := w.match(path); p != nil {
				return p
			}
		}
	}
	if t.any != nil {
		return t.any.match(path)
	}
	return nil
}

// hasHost reports whether a TLS certificate should be issued for host.
func (t *ingressTable) hasHost(host string) bool {
	if t.any != nil || t.exact[host] != nil {
		return true
	}
	for _, w := range t.wildcard {
		if w.covers(host) {
			return true
		}
	}
	return false
}

// covers reports whether a wildcard host matches host: exactly one label
// before its suffix, as in Kubernetes.
func (h *ingressHost) covers(host string) bool {
	return len(host) > len(h.suffix) && strings.HasSuffix(host, h.suffix) &&
		!strings.Contains(host[:len(host)-len(h.suffix)], ".")
}

func (h *ingressHost) match(path string) *ingressPath {
	for i := range h.paths {
		if h.paths[i].match(path) {
			return &h.paths[i]
		}
	}
	return nil
}

// ingressHandler serves one ingress listener.
type ingressHandler struct {
	m      *Mesh
	secure bool
}

func (h *ingressHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.m.cur.Load()
	t := c.ingHTTP
	if h.secure {
		t = c.ingHTTPS
	}
	host, _, _ := splitHostPort(r.Host)
	host = lowerASCII(strings.TrimSuffix(host, "."))
	// The prefix is matched against the path the backend will get: with
	// the raw path, /public/%2e%2e/private would pass a /public rule.
	if !cleanPath(w, r) {
		return
	}
	p := t.route(host, r.URL.Path)
	if p == nil {
		writeText(w, http.StatusNotFound, fmt.Sprintf("no ingress rule for host %q and path %q", host, r.URL.Path))
		return
	}
	// The ingress is an edge: identity headers come only from nubo (the
	// gateway's authorizers), and X-Forwarded-* say what the ingress saw,
	// as Envoy sets them at an edge.
	edgeheader.Edge(r)
	if p.gateway {
		g := h.m.gateway.Load()
		if g == nil {
			writeText(w, http.StatusBadGateway, "gateway: not running")
			return
		}
		// The gateway keeps the X-Forwarded-* just set rather than
		// counting this in-process hop as a client.
		g.h.ServeHTTP(w, edgeheader.FromEdge(r))
		return
	}
	h.m.serveService(w, r, c, IngressPrincipal, p.svc)
}

// cleanPath puts r's path in the normal form that the ingress, the mesh
// and the gateway share (see internal/urlpath), or answers 400 and
// returns false. Rules and policies are matched against it and it is what
// the backend gets, so they cannot disagree about where a request goes.
func cleanPath(w http.ResponseWriter, r *http.Request) bool {
	if err := urlpath.CleanURL(r.URL); err != nil {
		writeText(w, http.StatusBadRequest, fmt.Sprintf("path %q: %v", r.URL.EscapedPath(), err))
		return false
	}
	return true
}

// ingressServers are the running ingress listeners.
type ingressServers struct {
	httpAddr, httpsAddr string // as configured
	plain, secure       *listener
	ca                  *localca.CA
}

// bindIngress binds the listeners c asks for, reusing those of cur whose
// addresses did not change. It serves nothing yet.
func (m *Mesh) bindIngress(c *compiled, cur *ingressServers) (*ingressServers, error) {
	want := &ingressServers{httpAddr: c.cfg.IngressHTTP, httpsAddr: c.cfg.IngressHTTPS}
	if c.ingHTTP.empty() {
		want.httpAddr = ""
	}
	if c.ingHTTPS.empty() {
		want.httpsAddr = ""
	}
	log := m.logger().With("component", "ingress")
	if cur != nil && cur.httpAddr == want.httpAddr {
		want.plain = cur.plain
	} else if want.httpAddr != "" {
		ln, err := net.Listen("tcp", want.httpAddr)
		if err != nil {
			return nil, fmt.Errorf("mesh: ingress http listener %s: %w", want.httpAddr, err)
		}
		srv := newServer(&ingressHandler{m: m}, log, m.ingressLimits)
		want.plain = &listener{key: listenerKey{caller: IngressPrincipal}, ln: m.ingressConns.Listener(ln),
			srv: srv, loop: newLoop(srv, log), url: "http://" + ln.Addr().String()}
	}
	if cur != nil && cur.httpsAddr == want.httpsAddr {
		want.secure, want.ca = cur.secure, cur.ca
		return want, nil
	}
	if want.httpsAddr != "" {
		ca, err := localca.Open(c.cfg.CADir)
		if err != nil {
			want.closeUnserved(cur)
			return nil, fmt.Errorf("mesh: ingress https listener %s: %w", want.httpsAddr, err)
		}
		want.ca = ca
		ln, err := net.Listen("tcp", want.httpsAddr)
		if err != nil {
			want.closeUnserved(cur)
			return nil, fmt.Errorf("mesh: ingress https listener %s: %w", want.httpsAddr, err)
		}
		ln = m.ingressConns.Listener(ln)
		srv := newServer(&ingressHandler{m: m, secure: true}, log, m.ingressLimits)
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: m.certificate(ca),
		}
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		srv.Protocols = &p
		want.secure = &listener{key: listenerKey{caller: IngressPrincipal, target: "https"}, ln: ln, srv: srv, url: "https://" + ln.Addr().String()}
	}
	return want, nil
}

// certificate issues a leaf per server name from the local CA: for hosts
// of TLS ingresses, or for the address dialled when the client sends no
// name; any other name gets a localhost certificate, which the client
// rejects, as it would a default certificate in Kubernetes.
func (m *Mesh) certificate(ca *localca.CA) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := strings.ToLower(hello.ServerName)
		if name == "" {
			if a, ok := hello.Conn.LocalAddr().(*net.TCPAddr); ok {
				return ca.Leaf(a.IP.String())
			}
			return ca.Leaf("localhost")
		}
		if !m.cur.Load().ingHTTPS.hasHost(name) {
			name = "localhost"
		}
		return ca.Leaf(name)
	}
}

// closeUnserved closes the listeners bound for s that cur does not own.
func (s *ingressServers) closeUnserved(cur *ingressServers) {
	for _, l := range []*listener{s.plain, s.secure} {
		if l != nil && l.done == nil && (cur == nil || (l != cur.plain && l != cur.secure)) {
			l.ln.Close()
		}
	}
}

// serve starts serving the listeners.
func (s *ingressServers) serve(m *Mesh) {
	if s.plain != nil && s.plain.done == nil {
		m.serve(s.plain)
	}
	if s.secure != nil && s.secure.done == nil {
		l := s.secure
		l.done = make(chan struct{})
		go func() {
			defer close(l.done)
			_ = l.srv.ServeTLS(l.ln, "", "")
		}()
	}
}

// shutdown stops the listeners of s that next does not reuse (all with a
// nil next).
func (s *ingressServers) shutdown(ctx context.Context, next *ingressServers) error {
	var errs []error
	for _, l := range []*listener{s.plain, s.secure} {
		if l != nil && (next == nil || (l != next.plain && l != next.secure)) {
			errs = append(errs, l.shutdown(ctx))
		}
	}
	return errors.Join(errs...)
}

// IngressAddrs returns the addresses the ingress listens on, "" for a
// listener not running.
func (m *Mesh) IngressAddrs() (httpAddr, httpsAddr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ingress == nil {
		return "", ""
	}
	if l := m.ingress.plain; l != nil {
		httpAddr = l.ln.Addr().String()
	}
	if l := m.ingress.secure; l != nil {
		httpsAddr = l.ln.Addr().String()
	}
	return httpAddr, httpsAddr
}

// CACertPath is the certificate of the local CA kept in dir, for `nubo ca`
// to print and users to trust.
func CACertPath(dir string) string { return localca.CertPath(dir) }
