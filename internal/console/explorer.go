package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Limits of the API explorer's calls.
const (
	callTimeout   = 30 * time.Second
	maxCallAnswer = 1 << 20
)

// call is the API explorer's way to the gateway: the page cannot read the
// gateway's answers itself (another origin, without CORS), so the console
// sends the request and hands back the answer. It is a state-changing
// request like the others: same origin and the token (tokenRequired).
func (s *Server) call(w http.ResponseWriter, r *http.Request) {
	var c apitype.Call
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`body: want {"method", "path", "headers", "body"}: %v`, err))
		return
	}
	base := s.gatewayURL()
	if base == "" {
		writeError(w, http.StatusNotFound, "the system has no gateway to call")
		return
	}
	if !strings.HasPrefix(c.Path, "/") || strings.HasPrefix(c.Path, "//") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("path %q: want a path on the gateway, starting with one /", c.Path))
		return
	}
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.Method, base+c.Path, strings.NewReader(c.Body))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("request %s %s: %v", c.Method, c.Path, err))
		return
	}
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	traceID := newID(16)
	req.Header.Set("traceparent", "00-"+traceID+"-"+newID(8)+"-01")
	start := time.Now()
	resp, err := s.gateway.Do(req)
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("call %s %s: %v", c.Method, c.Path, err))
		return
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	n, _ := io.Copy(&body, io.LimitReader(resp.Body, maxCallAnswer+1))
	out := apitype.CallResult{
		Status: resp.StatusCode, Headers: map[string]string{},
		DurationMs: float64(time.Since(start).Microseconds()) / 1000, TraceID: traceID,
	}
	if n > maxCallAnswer {
		body.Truncate(maxCallAnswer)
		out.Truncated = true
	}
	out.Body = body.String()
	for k := range resp.Header {
		out.Headers[k] = resp.Header.Get(k)
	}
	writeJSON(w, http.StatusOK, out)
}

// newID is n random bytes in hex: a W3C trace or span id.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
