package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nubo-dev/nubo/internal/apitype"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// How long the client waits: to connect (the engine is on this machine, so
// a slow connect means nothing answers), and for an answer that is not a
// stream.
const (
	dialTimeout    = 3 * time.Second
	requestTimeout = 30 * time.Second
	// maxAnswer bounds a JSON answer of the admin API.
	maxAnswer = 64 << 20
)

// engineTarget is where a command finds the running engine, and how it was
// found, for messages.
type engineTarget struct {
	addr string
	// source says where addr came from: "--addr", "local.console of
	// nubo.yaml", or the lock of a running engine.
	source string
	// stateDir is the spec's state directory; "" with --addr.
	stateDir string
	// lockPID is the pid in the state directory's lock, 0 when no engine
	// holds it.
	lockPID int
}

// addrFlag adds --addr to a command that talks to a running engine.
func addrFlag(cmd *cobra.Command, addr *string) {
	cmd.Flags().StringVar(addr, "addr", "", "the engine's console address HOST:PORT (default: from the spec's running engine, else local.console)")
}

// findEngine finds the running engine's console: --addr when given, else the
// address the engine running the spec recorded in its lock, else the spec's
// local.console.
func findEngine(g *globals, addr string) (engineTarget, error) {
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return engineTarget{}, usageErrorf("--addr %q: want HOST:PORT", addr)
		}
		return engineTarget{addr: addr, source: "--addr"}, nil
	}
	app, err := loadSpecFor(g.file, "find the engine", true)
	if err != nil {
		return engineTarget{}, err
	}
	g.stateDirOf(app)
	t := engineTarget{addr: app.Local.Console, source: "local.console of " + g.file, stateDir: app.StatePath()}
	if info, ok := engine.ReadLock(t.stateDir); ok {
		t.lockPID = info.PID
		if info.Console != "" {
			t.addr = info.Console
			t.source = fmt.Sprintf("recorded by the engine running %s, pid %d", g.file, info.PID)
		}
	}
	return t, nil
}

// loadSpecFor loads the spec a command needs to do why, with a short error
// (not the diagnostics: nubo validate shows those) that says what to do;
// withAddr mentions --addr as the way around.
func loadSpecFor(file, why string, withAddr bool) (*spec.App, error) {
	app, err := spec.Load(file)
	if err == nil {
		return app, nil
	}
	var orAddr, passAddr string
	if withAddr {
		orAddr, passAddr = " or --addr HOST:PORT", "; pass --addr HOST:PORT"
	}
	var diags spec.Diagnostics
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: no such file, needed to %s; pass --file FILE%s", file, why, orAddr)
	case errors.As(err, &diags):
		return nil, fmt.Errorf("%s is not valid (nubo validate -f %s shows why), so nubo cannot %s%s", file, file, why, passAddr)
	default:
		return nil, fmt.Errorf("load %s to %s: %w", file, why, err)
	}
}

// engineClient talks to the admin API of one engine.
type engineClient struct {
	target engineTarget
	http   *http.Client
}

func newEngineClient(t engineTarget) *engineClient {
	return &engineClient{target: t, http: &http.Client{Transport: &http.Transport{
		Proxy:               nil, // the engine is on this machine
		DialContext:         (&net.Dialer{Timeout: dialTimeout}).DialContext,
		MaxIdleConnsPerHost: 2,
	}}}
}

// errNotRunning says that nothing answers at the engine's address.
type errNotRunning struct {
	target engineTarget
}

func (e errNotRunning) Error() string {
	if e.target.lockPID != 0 {
		return fmt.Sprintf("no nubo engine answers at %s (%s); it may be starting or stopping", e.target.addr, e.target.source)
	}
	return fmt.Sprintf("no nubo engine is running at %s (%s); start it with nubo up", e.target.addr, e.target.source)
}

// apiError is an error answer of the admin API.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

// do sends a request and returns a 2xx answer; anything else is an error
// that says what went wrong in the user's terms.
func (c *engineClient) do(ctx context.Context, method, path string) (*http.Response, error) {
	return c.doBody(ctx, method, path, "", nil)
}

// doBody is do with a request body of the given content type.
func (c *engineClient) doBody(ctx context.Context, method, path, contentType string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.target.addr+path, rd)
	if err != nil {
		return nil, fmt.Errorf("engine at %s: %w", c.target.addr, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set(audit.ActorHeader, audit.Actor("cli"))
	// Read at each request: a restarted engine writes a new token.
	console.SetToken(req, console.ReadToken(c.target.stateDir))
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, errNotRunning{c.target}
		}
		return nil, fmt.Errorf("ask the engine at %s: %w", c.target.addr, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var answer struct {
		Error string `json:"error"`
		// Errors is how the trace query API (Jaeger's) answers.
		Errors []apitype.JaegerError `json:"errors"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(data, &answer) == nil && answer.Error == "" && len(answer.Errors) > 0 {
		answer.Error = answer.Errors[0].Msg
	}
	if answer.Error == "" {
		return nil, fmt.Errorf("the server at %s (%s) does not answer as a nubo engine: %s %s: %s", c.target.addr, c.target.source, method, path, resp.Status)
	}
	return nil, &apiError{code: resp.StatusCode, msg: answer.Error}
}

// getJSON fetches path and returns the raw document and decodes it into v.
func (c *engineClient) getJSON(ctx context.Context, path string, v any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read the answer of the engine at %s: %w", c.target.addr, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("the server at %s (%s) does not answer as a nubo engine: GET %s: %w", c.target.addr, c.target.source, path, err)
	}
	return data, nil
}

// post sends a POST whose answer is not needed beyond its status.
func (c *engineClient) post(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodPost, path)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.Body.Close()
}

// answers reports whether the engine's console still answers: any HTTP
// answer counts, only a refused or failed connection does not.
func (c *engineClient) answers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.target.addr+"/healthz", nil)
	if err != nil {
		return false
	}
	req.Close = true // no kept connection to mistake for a live server
	resp, err := c.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// terminal returns the file descriptor of a stream that is a terminal, for
// colors and prompts.
func terminal(stream any) (int, bool) {
	f, ok := stream.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// getForOutput is how a command that shows one answer of the engine
// starts: it checks --output, finds the engine and GETs path into v. With
// --output json it writes the answer as the engine gave it, and done is
// true: there is nothing left to print.
func getForOutput(cmd *cobra.Command, std stdio, g *globals, addr, output, path string, v any) (done bool, err error) {
	if err := checkOutput(output); err != nil {
		return false, err
	}
	t, err := findEngine(g, addr)
	if err != nil {
		return false, err
	}
	raw, err := newEngineClient(t).getJSON(cmd.Context(), path, v)
	if err != nil {
		return false, err
	}
	if output == "json" {
		return true, writeIndented(std.out, raw)
	}
	return false, nil
}
