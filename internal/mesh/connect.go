package mesh

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// connect handles a CONNECT request on a caller's proxy listener.
//
// To a host outside the mesh, it opens a TCP tunnel (HTTPS egress). To a
// mesh service (gRPC clients honour HTTPS_PROXY and tunnel even plain h2c),
// the tunnel is terminated here when the client speaks plain HTTP inside
// it, so that each request gets the mesh's full treatment; when the client
// speaks TLS inside it, the bytes go to one replica as a TCP proxy would,
// authorized on the caller alone (Istio's semantics for TCP traffic).
func (m *Mesh) connect(w http.ResponseWriter, r *http.Request, caller string) {
	if r.ProtoMajor != 1 {
		writeText(w, http.StatusMethodNotAllowed, "CONNECT is supported over HTTP/1.1 only")
		return
	}
	c := m.cur.Load()
	t, port, badPort := c.lookup(r.Host)
	meshName := ""
	if t != nil {
		meshName = t.name
	}
	if c.egressDenied(w, caller, meshName, r.Host) {
		return
	}
	if badPort {
		writeText(w, http.StatusServiceUnavailable, "service \""+t.name+"\" has no port "+strconv.Itoa(port))
		return
	}
	var up net.Conn
	if t == nil {
		var err error
		up, err = m.dialer.DialContext(r.Context(), "tcp", r.Host)
		if err != nil {
			writeText(w, http.StatusBadGateway, "upstream connect error: "+err.Error())
			return
		}
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if up != nil {
			up.Close()
		}
		writeText(w, http.StatusInternalServerError, "CONNECT: "+err.Error())
		return
	}
	untrack := m.trackHijacked(conn)
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
		untrack()
		conn.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	client := &bufferedConn{Conn: conn, r: brw.Reader}
	if up != nil {
		defer untrack()
		pipe(client, up)
		return
	}
	// A mesh target: look at the first byte the client sends.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	first, err := brw.Reader.Peek(1)
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		untrack()
		conn.Close()
		return
	}
	if first[0] == 0x16 { // a TLS handshake record
		defer untrack()
		m.tunnelTCP(client, c, caller, t)
		return
	}
	// Plain HTTP/1.1 or h2c: serve it as if it had come to the listener,
	// with the tunnel's target as the host of origin-form requests.
	untrack()
	m.mu.Lock()
	l := m.listeners[listenerKey{caller: caller}]
	m.mu.Unlock()
	if l == nil {
		conn.Close()
		return
	}
	go func() {
		ol := &oneConnListener{conn: &tunnelConn{bufferedConn: client, target: r.Host}}
		_ = l.srv.Serve(ol)
		// A server shut down before accepting leaves the connection here.
		if c, err := ol.Accept(); err == nil {
			c.Close()
		}
	}()
}

// tunnelTCP joins a client tunnel to one replica of a mesh target.
func (m *Mesh) tunnelTCP(client net.Conn, c *compiled, caller string, t *target) {
	defer client.Close()
	svc := t.pick()
	if !svc.authz.empty() {
		d := svc.authz.check(peer{principal: caller, namespace: c.ns}, nil)
		if !d.allowed {
			if c.enforce {
				m.logger().Info("mesh: tunnel denied", "source", caller, "destination", svc.name, "policy", denyingPolicy(d))
				return
			}
			m.logger().Warn("mesh: tunnel would be denied (enforcement: audit)", "source", caller, "destination", svc.name, "policy", denyingPolicy(d))
		}
	}
	ep := svc.cl.current().pick(svc.lb.alg, &svc.cl.rr, 0, false, nil)
	if ep == nil {
		return
	}
	up, err := m.dialer.Dial("tcp", ep.addr)
	svc.cl.report(ep, err != nil)
	if err != nil {
		return
	}
	ep.active.Add(1)
	defer ep.active.Add(-1)
	untrack := m.trackHijacked(up)
	defer untrack()
	pipe(client, up)
}

// pipe copies both ways until either side ends, then closes both.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(a, b)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(b, a)
		done <- struct{}{}
	}()
	<-done
	a.Close()
	b.Close()
	<-done
}

// bufferedConn is a hijacked connection whose reader may hold bytes
// already read.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// tunnelConn is a terminated CONNECT tunnel served as an HTTP connection.
type tunnelConn struct {
	*bufferedConn
	target string
}

// oneConnListener hands one connection to http.Server.Serve, then reports
// itself closed; the connection lives on, tracked by the server.
type oneConnListener struct {
	mu   sync.Mutex
	conn net.Conn
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil, net.ErrClosed
	}
	c := l.conn
	l.conn = nil
	return c, nil
}

func (l *oneConnListener) Close() error { return nil }

func (l *oneConnListener) Addr() net.Addr { return tunnelAddr{} }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "tunnel" }
func (tunnelAddr) String() string  { return "tunnel" }
