package databases

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/tracing"
)

// The network allow-list (security.network.ingress). Locally every process
// is on loopback, so the source address says nothing about who calls. As
// the mesh knows a caller by the proxy listener it was given, each workload
// gets its own listener for the database: its ${databases.NAME.port} (and
// url) point there, and the listener knows who is calling. A listed
// workload's connections are forwarded to the server; any other's are
// closed at once, with a line in the log stream and a count in
// nubo_database_connections_refused_total{database, workload}.
//
// What it does not promise: the server itself still listens on loopback,
// and a process that finds its port (from `nubo status`, say) reaches it
// directly; the database's passwords are what stop it then. A Kubernetes
// NetworkPolicy, enforced by the network plugin, has no such gap.

// allowList is the listeners of one database, one per workload.
type allowList struct {
	db       *Database
	allowed  map[string]bool
	refused  *prometheus.CounterVec
	mu       sync.Mutex // guards the fields below
	byName   map[string]*workloadListener
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
	onRefuse func(workload string)
}

type workloadListener struct {
	workload string
	ln       net.Listener
}

// Allowed lists the workloads security.network.ingress lets in, or nil
// when it lists none (everyone may connect, without a listener).
func (db *Database) allowedWorkloads() map[string]bool {
	var out map[string]bool
	for _, rule := range db.spec.Security.Network.Ingress {
		for _, p := range rule.From {
			if out == nil {
				out = map[string]bool{}
			}
			if p.Service != "" {
				out[p.Service] = true
			}
			if p.Function != "" {
				out[p.Function] = true
			}
		}
	}
	return out
}

// openAllowList opens a listener for every service and function of the
// spec; nil when the database has no allow-list.
func (db *Database) openAllowList() (*allowList, error) {
	allowed := db.allowedWorkloads()
	if allowed == nil {
		return nil, nil
	}
	app := db.d.cfg.App
	var workloads []string
	for n := range app.Services {
		workloads = append(workloads, n)
	}
	for n := range app.Functions {
		workloads = append(workloads, n)
	}
	sort.Strings(workloads)
	a := &allowList{db: db, allowed: allowed, refused: db.d.metrics.refused, byName: map[string]*workloadListener{}, conns: map[net.Conn]struct{}{}}
	a.onRefuse = func(w string) {
		db.notify(fmt.Sprintf("database %s: refused a connection from %s, which security.network.ingress does not list", db.name, w))
	}
	for _, w := range workloads {
		ln, err := net.Listen("tcp", host+":0")
		if err != nil {
			a.close()
			return nil, fmt.Errorf("allow-list: listen for %s: %w", w, err)
		}
		wl := &workloadListener{workload: w, ln: ln}
		a.byName[w] = wl
		a.wg.Go(func() { a.serve(wl) })
	}
	return a, nil
}

// port returns the port workload connects to.
func (a *allowList) port(workload string) (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	wl := a.byName[workload]
	if wl == nil {
		return 0, false
	}
	return wl.ln.Addr().(*net.TCPAddr).Port, true
}

func (a *allowList) serve(wl *workloadListener) {
	for {
		c, err := wl.ln.Accept()
		if err != nil {
			return // closed
		}
		span := a.db.connSpan(wl.workload)
		if !a.allowed[wl.workload] {
			c.Close()
			a.refused.WithLabelValues(a.db.name, wl.workload).Inc()
			a.onRefuse(wl.workload)
			a.db.endConnSpan(span, 0, 0, errRefused)
			continue
		}
		if !a.track(c) {
			c.Close()
			return
		}
		a.wg.Go(func() { a.forward(c, span) })
	}
}

func (a *allowList) track(c net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.conns[c] = struct{}{}
	return true
}

// forward copies both ways between the workload and the server until one
// side closes.
func (a *allowList) forward(c net.Conn, span *tracing.Span) {
	defer func() {
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
		c.Close()
	}()
	s, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(a.db.port)))
	if err != nil {
		a.db.endConnSpan(span, 0, 0, err)
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	var sent, received int64
	pipe := func(dst, src net.Conn, n *int64) {
		// Plain reads and writes: a database's messages are small, and
		// splice(2), which io.Copy picks between two TCP connections,
		// costs two system calls and a pipe per message.
		buf := make([]byte, 32<<10)
		*n, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
		// Half-close, so the other side sees the end of this one.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(s, c, &sent)
	go pipe(c, s, &received)
	<-done
	<-done
	a.db.endConnSpan(span, sent, received, nil)
}

// close closes the listeners and every forwarded connection, and waits.
func (a *allowList) close() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.closed = true
	var errs []error
	for _, wl := range a.byName {
		errs = append(errs, wl.ln.Close())
	}
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	_ = errors.Join(errs...)
	a.wg.Wait()
}
