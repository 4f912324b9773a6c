package mesh

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/spec"
)

// h2cServer is a backend that speaks HTTP/2 cleartext, as a gRPC server.
func h2cServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	s.Config.Protocols = &p
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// grpcEcho is a gRPC-style bidirectional stream: each line of the request
// comes back at once, and the status is a trailer.
func grpcEcho(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		http.Error(w, "want HTTP/2", http.StatusHTTPVersionNotSupported)
		return
	}
	w.Header().Set("Content-Type", "application/grpc")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		fmt.Fprintf(w, "echo %s\n", sc.Text())
		w.(http.Flusher).Flush()
	}
	w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
}

func h2cClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p, DialContext: dial}}
}

// bidiEcho sends two lines, each only after the echo of the previous one
// came back (which needs full-duplex streaming through the mesh), then
// checks the gRPC status trailer.
func bidiEcho(t *testing.T, c *http.Client, u string) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, u, pr)
	req.Header.Set("Content-Type", "application/grpc")
	type res struct {
		resp *http.Response
		err  error
	}
	got := make(chan res, 1)
	go func() {
		resp, err := c.Do(req)
		got <- res{resp, err}
	}()
	var resp *http.Response
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatal(r.err)
		}
		resp = r.resp
	case <-time.After(10 * time.Second):
		t.Fatal("no response headers: the stream's headers were not forwarded at once")
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("response over HTTP/%d, want 2", resp.ProtoMajor)
	}
	br := bufio.NewReader(resp.Body)
	for _, msg := range []string{"one", "two"} {
		fmt.Fprintf(pw, "%s\n", msg)
		line, err := br.ReadString('\n')
		if err != nil || line != "echo "+msg+"\n" {
			t.Fatalf("read %q, %v; want the echo of %q", line, err, msg)
		}
	}
	pw.Close()
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("unexpected data %q", rest)
	}
	if s := resp.Trailer.Get("Grpc-Status"); s != "0" {
		t.Errorf("grpc-status trailer %q, want 0 (trailers %v)", s, resp.Trailer)
	}
}

func TestGRPCOverH2C(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("echo", h2cServer(t, http.HandlerFunc(grpcEcho)))
	reg := prometheus.NewRegistry()
	cfg := baseConfig(t)
	cfg.Metrics = reg
	cfg.Services["echo"] = ServiceConfig{Port: 50051, GRPC: true}
	m := startMesh(t, cfg, eps)

	t.Run("service URL", func(t *testing.T) {
		u, err := m.ServiceURL("orders", "echo")
		if err != nil {
			t.Fatal(err)
		}
		bidiEcho(t, h2cClient(nil), u+"/echo.Echo/Stream")
	})
	t.Run("CONNECT tunnel", func(t *testing.T) {
		// gRPC clients honour HTTPS_PROXY with a CONNECT tunnel, even for
		// plain h2c; the mesh terminates the tunnel.
		proxy, _ := m.ProxyURL("orders")
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := net.Dial("tcp", strings.TrimPrefix(proxy, "http://"))
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != 200 {
				return nil, fmt.Errorf("CONNECT: %s", resp.Status)
			}
			return c, nil
		}
		bidiEcho(t, h2cClient(dial), "http://echo:50051/echo.Echo/Stream")
	})
	if n := requestsTotal(t, reg, map[string]string{"reporter": "source", "request_protocol": "grpc", "grpc_response_status": "0", "destination_service_name": "echo"}); n != 2 {
		t.Errorf("istio_requests_total for the gRPC calls = %v, want 2", n)
	}
}

// A minimal WebSocket (RFC 6455) for the test: handshake and short frames.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

func wsWrite(w io.Writer, payload string, mask bool) error {
	b := []byte{0x81, byte(len(payload))}
	p := []byte(payload)
	if mask {
		key := []byte{1, 2, 3, 4}
		b[1] |= 0x80
		b = append(b, key...)
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	_, err := w.Write(append(b, p...))
	return err
}

func wsRead(r io.Reader) (string, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	n := int(h[1] & 0x7f)
	var key [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return "", err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return "", err
	}
	for i := range p {
		p[i] ^= key[i%4]
	}
	return string(p), nil
}

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("chat", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want a websocket", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		brw.Flush()
		for {
			msg, err := wsRead(brw)
			if err != nil {
				return
			}
			if err := wsWrite(conn, msg, false); err != nil {
				return
			}
		}
	})...)
	m := startMesh(t, baseConfig(t, "chat"), eps)
	proxy, _ := m.ProxyURL("web")
	conn, err := net.Dial("tcp", strings.TrimPrefix(proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	fmt.Fprintf(conn, "GET http://chat/ws HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("handshake: %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	for _, msg := range []string{"hello", "world"} {
		if err := wsWrite(conn, msg, true); err != nil {
			t.Fatal(err)
		}
		got, err := wsRead(br)
		if err != nil || got != msg {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
	}
}

func TestServerSentEvents(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	eps := newFakeEndpoints()
	eps.set("feed", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
	})...)
	m := startMesh(t, baseConfig(t, "feed"), eps)
	resp, err := proxyClient(t, m, "web").Get("http://feed/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() {
		l, _ := br.ReadString('\n')
		first <- l
	}()
	select {
	case l := <-first:
		if l != "data: one\n" {
			t.Fatalf("first event %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first event did not arrive while the stream was open")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest of the stream %q", rest)
	}
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	eps := newFakeEndpoints()
	eps.set("users", s)
	m := startMesh(t, baseConfig(t, "users"), eps)
	c := proxyClient(t, m, "orders")
	reused := 0
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequest(http.MethodGet, "http://users/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) {
				if ci.Reused {
					reused++
				}
			},
		}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential requests opened %d connections to the replica, want 1", n)
	}
	if reused != 49 {
		t.Errorf("the caller reused its connection to the proxy %d times, want 49", reused)
	}
}

func TestEgress(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "outside") }))
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secure outside") }))
	t.Cleanup(secure.Close)
	m := startMesh(t, baseConfig(t, "users"), newFakeEndpoints())
	c := proxyClient(t, m, "orders")
	if code, body := get(t, c, plain.URL+"/x"); code != 200 || body != "outside" {
		t.Errorf("plain egress: %d %q", code, body)
	}
	proxy, _ := m.ProxyURL("orders")
	pu, _ := url.Parse(proxy)
	tc := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(pu),
		TLSClientConfig: &tls.Config{RootCAs: secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs},
	}}
	if code, body := get(t, tc, secure.URL+"/x"); code != 200 || body != "secure outside" {
		t.Errorf("HTTPS egress through CONNECT: %d %q", code, body)
	}
}

func TestServiceURLEnv(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users-v2", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Host) })...)
	cfg := baseConfig(t, "users-v2")
	cfg.Services["users-v2"] = ServiceConfig{Port: 8080}
	m := startMesh(t, cfg, eps)
	env, err := m.Env("orders")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	proxy, _ := m.ProxyURL("orders")
	if vars["HTTP_PROXY"] != proxy || vars["https_proxy"] != proxy || !strings.Contains(vars["NO_PROXY"], "127.0.0.1") {
		t.Errorf("proxy variables wrong: %v", env)
	}
	u := vars["NUBO_SERVICE_USERS_V2_URL"]
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("NUBO_SERVICE_USERS_V2_URL = %q in %v", u, env)
	}
	if code, body := get(t, http.DefaultClient, u+"/x"); code != 200 || body != "users-v2:8080" {
		t.Errorf("through the service URL: %d, Host %q, want users-v2:8080", code, body)
	}
	again, _ := m.ServiceURL("orders", "users-v2")
	if again != u {
		t.Errorf("a second ServiceURL moved the listener: %s then %s", u, again)
	}
	// The proxy listener itself is not a service.
	if code, body := get(t, http.DefaultClient, proxy+"/x"); code != http.StatusBadRequest || !strings.Contains(body, "HTTP_PROXY") {
		t.Errorf("direct request to the proxy listener: %d %q", code, body)
	}
}

// TestTLSThroughTunnel covers a client speaking TLS to a mesh service
// through CONNECT: the bytes go to a replica, authorized on the caller.
func TestTLSThroughTunnel(t *testing.T) {
	t.Parallel()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "tls replica") }))
	t.Cleanup(secure.Close)
	eps := newFakeEndpoints()
	eps.set("vault", secure)
	cfg := baseConfig(t)
	cfg.Services["vault"] = ServiceConfig{Port: 443}
	cfg.Mesh.Policies = []*spec.Policy{{Name: "no-web", To: "vault", Action: "deny", From: spec.PolicySource{Principals: []string{"web"}}}}
	m := startMesh(t, cfg, eps)
	client := func(caller string) *http.Client {
		proxy, _ := m.ProxyURL(caller)
		pu, _ := url.Parse(proxy)
		roots := secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
		return &http.Client{Transport: &http.Transport{
			Proxy:           http.ProxyURL(pu),
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "example.com"},
		}, Timeout: 10 * time.Second}
	}
	if code, body := get(t, client("orders"), "https://vault/"); code != 200 || body != "tls replica" {
		t.Errorf("TLS through a tunnel to a mesh service: %d %q", code, body)
	}
	if resp, err := client("web").Get("https://vault/"); err == nil {
		resp.Body.Close()
		t.Errorf("denied caller got through: %s", resp.Status)
	}
}
