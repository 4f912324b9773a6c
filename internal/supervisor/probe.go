package supervisor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// newProbeClient returns the HTTP client of a supervisor's probes. Like the
// kubelet's: no keep-alive (a probe is a fresh connection), no certificate
// verification for https, redirects not followed (a 3xx is a success
// anyway). No proxy: nubo's own environment may set HTTP_PROXY for the mesh,
// and a probe must reach the replica itself.
func newProbeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet does
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// probe runs the instance's probes until ctx is done, with the Kubernetes
// gating: liveness and readiness start only once the startup probe has
// succeeded. A probe that decides the process must die sends the reason on
// kill and stops.
func (r *replica) probe(ctx context.Context, in *instance, kill chan<- string) {
	requestKill := func(why string) {
		select {
		case kill <- why:
		default:
		}
	}
	cfg := r.cfg
	if p := cfg.Startup; p != nil {
		started := false
		r.runProbe(ctx, in, ProbeStartup, p, func(ok bool, msg string, successes, failures int) bool {
			switch {
			case ok:
				started = true
				return false
			case failures >= p.FailureThreshold:
				requestKill(fmt.Sprintf("startup probe failed %d times: %s", failures, msg))
				return false
			}
			return true
		})
		if !started {
			return
		}
		r.update(func() {
			if r.state == StateStarting {
				r.state = StateRunning
			}
		})
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	if p := cfg.Liveness; p != nil {
		wg.Go(func() {
			r.runProbe(ctx, in, ProbeLiveness, p, func(ok bool, msg string, _, failures int) bool {
				if !ok && failures >= p.FailureThreshold {
					requestKill(fmt.Sprintf("liveness probe failed %d times: %s", failures, msg))
					return false
				}
				return true
			})
		})
	}
	switch p := cfg.Readiness; {
	case p != nil:
		wg.Go(func() {
			r.runProbe(ctx, in, ProbeReadiness, p, func(ok bool, msg string, successes, failures int) bool {
				switch {
				case ok && successes >= p.SuccessThreshold:
					r.setReady(true, "")
				case !ok && failures >= p.FailureThreshold:
					r.setReady(false, fmt.Sprintf("readiness probe failed %d times: %s", failures, msg))
				}
				return true
			})
		})
	case cfg.Port > 0:
		wg.Go(func() { r.awaitPort(ctx) })
	default:
		r.setReady(true, "")
	}
}

// runProbe runs one probe every Period from InitialDelay after the process
// started, and calls decide with each result and the consecutive success
// and failure counts, until decide returns false or ctx is done.
func (r *replica) runProbe(ctx context.Context, in *instance, kind ProbeKind, p *Probe,
	decide func(ok bool, msg string, successes, failures int) bool) {
	if d := time.Until(in.start.Add(p.InitialDelay)); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	tick := time.NewTicker(p.Period)
	defer tick.Stop()
	successes, failures := 0, 0
	for {
		msg, err := r.check(ctx, p)
		if ctx.Err() != nil {
			return // cut short by the process's end: says nothing
		}
		ok := err == nil
		if ok {
			successes, failures = successes+1, 0
		} else {
			successes, failures, msg = 0, failures+1, err.Error()
		}
		r.recordProbe(kind, ProbeResult{OK: ok, Message: msg, Time: time.Now(), ConsecutiveFailures: failures})
		// Each failure up to the threshold is worth a line; a readiness
		// probe that keeps failing after that is not.
		if !ok && failures <= p.FailureThreshold {
			r.log.Debug("probe failed", "probe", kind, "err", err, "failures", failures)
			r.emit(Event{Kind: EventUnhealthy, PID: in.pid, Probe: kind, Message: msg, Failures: failures, Threshold: p.FailureThreshold})
		}
		if !decide(ok, msg, successes, failures) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// check runs a probe once. It returns a short description of what was
// checked on success, or why it failed.
func (r *replica) check(ctx context.Context, p *Probe) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var (
		msg string
		err error
	)
	switch {
	case p.HTTP != nil:
		msg, err = r.checkHTTP(ctx, p.HTTP)
	case p.TCP != nil:
		msg, err = r.checkTCP(ctx, p.TCP.Port)
	case p.Exec != nil:
		msg, err = r.checkExec(ctx, p.Exec)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "", fmt.Errorf("%s: timed out after %v", msg, p.Timeout)
	}
	return msg, err
}

// portOr resolves a probe's port: zero, or the service's declared port
// (which the replica does not listen on: it has $PORT), means $PORT.
func (r *replica) portOr(port int) int {
	if port == 0 || port == r.cfg.Port {
		return r.port
	}
	return port
}

func (r *replica) checkHTTP(ctx context.Context, h *HTTPProbe) (string, error) {
	target := fmt.Sprintf("%s://127.0.0.1:%d%s", h.Scheme, r.portOr(h.Port), h.Path)
	what := "GET " + target
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return what, fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("User-Agent", "nubo-probe/1")
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := r.s.probeClient.Do(req)
	if err != nil {
		return what, fmt.Errorf("%s: %w", what, unwrapURLError(err))
	}
	// Read a little so that the server sees a well-behaved client; never
	// the whole of an unbounded body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return what, fmt.Errorf("%s: status %d", what, resp.StatusCode)
	}
	return fmt.Sprintf("%s: status %d", what, resp.StatusCode), nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (r *replica) checkTCP(ctx context.Context, port int) (string, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(r.portOr(port)))
	what := "connect " + addr
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return what, fmt.Errorf("%s: %w", what, err)
	}
	c.Close()
	return what, nil
}

// execOutputLimit bounds the output of an exec probe kept for its message.
const execOutputLimit = 1 << 10

func (r *replica) checkExec(ctx context.Context, e *ExecProbe) (string, error) {
	what := "exec " + strings.Join(e.Command, " ")
	cmd := exec.CommandContext(ctx, e.Command[0], e.Command[1:]...)
	cmd.Dir = r.cfg.Dir
	cmd.Env = r.env
	out := &capBuffer{max: execOutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	// On timeout kill the probe's whole group, not just its first process,
	// and don't wait long for pipes held by anything that escaped it.
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := r.s.sp.start(cmd); err != nil {
		return what, fmt.Errorf("%s: %w", what, err)
	}
	err := cmd.Wait()
	if err == nil {
		return what, nil
	}
	if o := strings.TrimSpace(string(out.buf)); o != "" {
		return what, fmt.Errorf("%s: %w: %s", what, err, o)
	}
	return what, fmt.Errorf("%s: %w", what, err)
}

// capBuffer keeps the first max bytes written to it and drops the rest.
// os/exec writes to it from one goroutine at a time when it is both Stdout
// and Stderr.
type capBuffer struct {
	buf []byte
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// awaitPort makes a replica with no readiness probe ready once its $PORT
// accepts connections: the local stand-in for a Service endpoint appearing.
// It polls quickly at first, since most services listen within a second.
func (r *replica) awaitPort(ctx context.Context) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	wait := 20 * time.Millisecond
	for {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			r.recordProbe(ProbeReadiness, ProbeResult{OK: true, Time: time.Now(),
				Message: fmt.Sprintf("port %d accepts connections (no readiness probe)", r.port)})
			r.setReady(true, "")
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
