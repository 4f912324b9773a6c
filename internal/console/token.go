package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// The per-run token. Any web page the user opens can send requests to
// 127.0.0.1, so a state-changing request must prove it comes from the user:
// the CLI and the MCP server read the token from a file only the user can
// read, the console's own pages get it inside the HTML the server sends them
// (which another origin cannot read). The same-origin check
// (http.CrossOriginProtection) and the Host check stand before it.
const (
	// TokenHeader carries the token; "Authorization: Bearer TOKEN" is
	// taken too.
	TokenHeader = "Nubo-Console-Token"
	// TokenFile is the token's file name in the state directory.
	TokenFile = "console.token"
	// TokenEnv overrides the file for clients that know no state
	// directory (nubo --addr).
	TokenEnv = "NUBO_CONSOLE_TOKEN"
)

// NewToken returns a fresh random token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("console token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// WriteToken writes tok to dir's token file, readable by the user only.
func WriteToken(dir, tok string) error {
	path := filepath.Join(dir, TokenFile)
	// Remove first: an older file with looser permissions keeps them
	// through a plain rewrite.
	_ = os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("console token: %w", err)
	}
	_, err = f.WriteString(tok + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("console token: write %s: %w", path, err)
	}
	return nil
}

// ReadToken returns the token a client sends: $NUBO_CONSOLE_TOKEN when set,
// else the one in dir's token file, else "" (the request is then refused
// with a message that says why).
func ReadToken(dir string) string {
	if t := os.Getenv(TokenEnv); t != "" {
		return t
	}
	if dir == "" {
		return ""
	}
	data, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// SetToken adds tok to a request, when there is one.
func SetToken(r *http.Request, tok string) {
	if tok != "" {
		r.Header.Set(TokenHeader, tok)
	}
}

// safeMethod reports whether a method changes nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// fromBrowser reports whether a request carries the headers every browser
// adds to a fetch and no plain HTTP client does.
func fromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Sec-Fetch-Mode") != ""
}

// needsToken reports whether r must carry the run's token: a
// state-changing request to nubo's own control surface. The admin API and
// the console's own API always need it. The platform API under /v1/ is the
// system's own processes' way to publish and invoke ($NUBO_API), and the
// Prometheus and Jaeger APIs are read by Grafana's server side: those hold
// no token, so there the token is asked of browsers only. Other paths are
// the system's own endpoints (functions' http triggers): the user's API,
// not nubo's.
func needsToken(r *http.Request) bool {
	if safeMethod(r.Method) {
		return false
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/admin/"), strings.HasPrefix(p, "/console/"):
		return true
	case strings.HasPrefix(p, "/v1/"), strings.HasPrefix(p, "/api/"), strings.HasPrefix(p, "/jaeger/"):
		return fromBrowser(r)
	}
	return false
}

// tokenRequired refuses a request that needsToken without the run's token.
func (s *Server) tokenRequired(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte(s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !needsToken(r) {
			next.ServeHTTP(w, r)
			return
		}
		got := r.Header.Get(TokenHeader)
		if got == "" {
			got, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			msg := "missing console token: state-changing requests carry the token of this run in the " + TokenHeader + " header (the CLI reads it from " + TokenFile + " in the state directory, or from $" + TokenEnv + ")"
			if got != "" {
				msg = "wrong console token: this engine wrote a new one to " + TokenFile + " in its state directory when it started"
			}
			writeError(w, http.StatusForbidden, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}
