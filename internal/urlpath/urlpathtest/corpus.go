// Package urlpathtest holds the traversal corpus that the tests of
// internal/urlpath and of every entry using it (ingress, gateway, mesh)
// run.
package urlpathtest

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Corpus is a traversal corpus: request targets that try to leave
// /public/ for /private/secret.txt, written as a client sends them
// (encoded, double-encoded, mixed case, backslashes, overlong UTF-8,
// merged slashes). Through any entry, none of them may be answered with
// the secret.
var Corpus = []string{
	"/public/../private/secret.txt",
	"/public/./../private/secret.txt",
	"/public//../private/secret.txt",
	"/public/%2e%2e/private/secret.txt",
	"/public/%2E%2E/private/secret.txt",
	"/public/%2e%2E/private/secret.txt",
	"/public/.%2e/private/secret.txt",
	"/public/..%2fprivate%2fsecret.txt",
	"/public/..%2Fprivate%2Fsecret.txt",
	"/public/%2e%2e%2fprivate%2fsecret.txt",
	"/public/%252e%252e/private/secret.txt",
	"/public/%252E%252E%252Fprivate%252Fsecret.txt",
	"/public/..%252fprivate%252fsecret.txt",
	"/public/..\\private\\secret.txt",
	"/public\\..\\private\\secret.txt",
	"/public/..%5cprivate%5csecret.txt",
	"/public/..%5Cprivate%5Csecret.txt",
	"/public/%c0%ae%c0%ae/private/secret.txt",
	"/public/%C0%AE%C0%AE%C0%AFprivate%C0%AFsecret.txt",
	"/public/%e0%80%ae%e0%80%ae/private/secret.txt",
	"/public/..%c0%afprivate%c0%afsecret.txt",
	"/public/%2e%2e/%2e%2e/private/secret.txt",
	"/public/../../../private/secret.txt",
	"/public/.../private/secret.txt",
	"/public/..;/private/secret.txt",
	"/public/%00/../private/secret.txt",
	"/public/..%00/private/secret.txt",
	"//public//..//private//secret.txt",
}

// Secret is the content of private/secret.txt in a FileServer's root.
const Secret = "the-secret-that-must-never-be-served"

// Public is the content of public/hello.txt.
const Public = "hello from public"

// FileServer starts, on loopback, a file server as lenient as real ones
// get: it decodes the path once more, reads backslashes as slashes and
// lets the file system resolve dot segments, so that a path reaching it
// with any traversal left serves Secret. It returns the server's URL.
func FileServer(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range map[string]string{"public/hello.txt": Public, "private/secret.txt": Secret} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if again, err := url.PathUnescape(p); err == nil {
			p = again
		}
		p = strings.ReplaceAll(p, `\`, "/")
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Get sends "GET target" over a new connection to addr (host:port) with
// the target's bytes exactly as given, which net/http's client would
// re-escape, and returns the status and body; status 0 is a connection
// the server closed without answering.
func Get(t testing.TB, addr, host, target string, headers ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n"
	for i := 0; i+1 < len(headers); i += 2 {
		req += headers[i] + ": " + headers[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
