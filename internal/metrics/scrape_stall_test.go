package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// hangingListener accepts connections and never answers on them, until the
// test ends.
func hangingListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// streamingServer answers every scrape with valid series, written until
// limit bytes have gone or the scraper hangs up; limit < 0 never ends.
// With announce, the answer says its length up front.
func streamingServer(t *testing.T, limit int, announce bool) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if announce {
			w.Header().Set("Content-Length", strconv.Itoa(limit))
		}
		w.WriteHeader(http.StatusOK)
		var line []byte
		for i, sent := 0, 0; limit < 0 || sent < limit; i++ {
			line = strconv.AppendInt(append(line[:0], "stream_series{i=\""...), int64(i), 10)
			line = append(line, "\"} 1\n"...)
			n, err := w.Write(line)
			if err != nil || r.Context().Err() != nil {
				return
			}
			sent += n
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestScrapeLoopsDoNotWait runs the metrics component with a healthy
// target beside five that could each hold up every scrape and rule
// evaluation: one that accepts the connection and never answers, one whose
// answer never ends, two that send 100 MB (one saying so up front), and an
// in-process handler that never returns and ignores its request's context.
// The healthy target must keep being scraped and the rules evaluated while
// the others are stuck, and each stuck scrape must end (at its deadline or
// at the size limit) as a failed one (up 0).
func TestScrapeLoopsDoNotWait(t *testing.T) {
	// Not parallel: reading 64 MiB answers four times a second takes the
	// machine's cores, and the other tests' 50ms scrapes would time out.
	good := startService(t)
	good.requests.WithLabelValues("200").Add(1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release })

	target := func(job, addr string) Target {
		return Target{URL: "http://" + addr + "/metrics", Labels: map[string]string{"job": job, "instance": addr}}
	}
	targets := []Target{
		target("good", "127.0.0.1:"+strconv.Itoa(good.port(t))),
		target("hang", hangingListener(t)),
		target("endless", streamingServer(t, -1, false)),
		target("huge", streamingServer(t, 100<<20, false)),
		target("announced", streamingServer(t, 100<<20, true)),
		{URL: "http://in-process/metrics", Handler: stuck, Labels: map[string]string{"job": "stuck", "instance": "in-process"}},
	}
	reg := prometheus.NewRegistry()
	m, err := New(Config{
		Dir:      t.TempDir(),
		Interval: 250 * time.Millisecond,
		Targets:  TargetFunc(func() []Target { return targets }),
		Rules: []rulefmt.RuleGroup{{Name: "g", Rules: []rulefmt.Rule{
			{Record: "job:up:recorded", Expr: `up{job="good"}`},
		}}},
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Stop must not wait for the stuck handler either.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})

	// value of a query that returns at most one sample, -1 if none.
	value := func(expr string) (float64, error) {
		vec, err := m.Query(context.Background(), expr, time.Now())
		if err != nil {
			return 0, err
		}
		if len(vec) == 0 {
			return -1, nil
		}
		return vec[0].F, nil
	}
	const want = 8
	nubotest.WaitFor(t, 2*time.Minute, func() error {
		// Successful scrapes: up is 1 or 0, so its sum counts them. (One
		// may fail on a loaded machine, when it takes longer than the
		// timeout; that is not what this test is about.)
		if n, err := value(`sum_over_time(up{job="good"}[1h])`); err != nil || n < want {
			return fmt.Errorf("%v successful scrapes of the good target, want %d (%v)", n, want, err)
		}
		if n, err := value(`count_over_time(job:up:recorded[1h])`); err != nil || n < want {
			return fmt.Errorf("%v rule evaluations, want %d (%v)", n, want, err)
		}
		for _, job := range []string{"hang", "endless", "huge", "announced", "stuck"} {
			if n, err := value(`count_over_time(up{job="` + job + `"}[1h])`); err != nil || n < 3 {
				return fmt.Errorf("%v scrapes of %s ended, want 3 (%v)", n, job, err)
			}
		}
		if n := counterValue(t, reg, "prometheus_target_scrapes_exceeded_body_size_limit_total"); n < 1 {
			return errors.New("no scrape counted as over the size limit yet")
		}
		return nil
	})
	for _, h := range m.Targets() {
		job := h.Labels["job"]
		if v, err := value(`max_over_time(up{job="` + job + `"}[1h])`); job != "good" && (err != nil || v != 0) {
			t.Errorf("%s: a scrape succeeded (max up %v, %v)", job, v, err)
		}
		var wantErr string
		switch job {
		case "good":
			continue
		case "huge", "endless":
			wantErr = "larger than the limit" // or the deadline, whichever comes first
		case "announced":
			// Refused on its Content-Length, before reading, unless even
			// the headers came after the deadline.
			wantErr = errBodyTooLarge.Error()
		default:
			wantErr = "timed out"
		}
		if h.Health != "down" || (!strings.Contains(h.LastError, wantErr) && !strings.Contains(h.LastError, "timed out")) {
			t.Errorf("%s: health %s, last error %q, want down with %q", job, h.Health, h.LastError, wantErr)
		}
	}
	// The scraper's and the rules' own metrics, named as Prometheus names them.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
	}
	for _, name := range []string{
		"prometheus_target_interval_length_seconds",
		"prometheus_target_scrape_duration_seconds",
		"prometheus_target_scrapes_exceeded_body_size_limit_total",
		"prometheus_rule_group_last_duration_seconds",
		"prometheus_rule_group_iterations_total",
		"prometheus_rule_group_iterations_missed_total",
	} {
		if !seen[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
}

// counterValue sums the counter name of reg, 0 if it has none.
func counterValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestAppendStopsAtDeadline: parsing and appending are within a scrape's
// deadline, not only the fetch, so a huge answer that arrived in time
// cannot hold a scrape past it.
func TestAppendStopsAtDeadline(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	sc, err := NewScraper(store, ScrapeOptions{Targets: TargetFunc(func() []Target { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	tg := Target{URL: "http://127.0.0.1:1/metrics", Labels: map[string]string{"job": "x", "instance": "127.0.0.1:1"}}
	l := sc.newLoop(tg, targetLabels(tg), tg.URL)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	app := store.Appender(context.Background())
	n, err := l.appendBody(ctx, app, exposition(10*ctxCheckEvery), "text/plain; version=0.0.4", time.Now().UnixMilli())
	_ = app.Rollback()
	if !errors.Is(err, context.DeadlineExceeded) || n >= ctxCheckEvery {
		t.Errorf("append past the deadline: %d samples, err %v; want fewer than %d and the deadline's error", n, err, ctxCheckEvery)
	}
}

// TestMissedIterations counts the evaluations a group missed because the
// previous one (or the machine) was late, as Prometheus'
// prometheus_rule_group_iterations_missed_total does.
func TestMissedIterations(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	ev, err := NewEvaluator(openStore(t), EvaluatorOptions{Interval: 10 * time.Second, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetRules([]rulefmt.RuleGroup{{Name: "g", Rules: []rulefmt.Rule{{Record: "one", Expr: "1"}}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Unix(t0, 0)
	ev.evaluate(context.Background(), start, true)
	ev.evaluate(context.Background(), start.Add(10*time.Second), true) // on time
	ev.evaluate(context.Background(), start.Add(40*time.Second), true) // 2 missed
	if got := counterValue(t, reg, "prometheus_rule_group_iterations_missed_total"); got != 2 {
		t.Errorf("missed iterations %v, want 2", got)
	}
	if got := counterValue(t, reg, "prometheus_rule_group_iterations_total"); got != 5 {
		t.Errorf("scheduled iterations %v, want 5 (3 run, 2 missed)", got)
	}
}

// TestRunFollowsTargets runs the scraper's loops as targets come, go and
// come back: a target gone has its series marked stale by its loop, one
// that comes back is scraped again, and Run marks everything stale as it
// returns.
func TestRunFollowsTargets(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	svc := startService(t)
	svc.requests.WithLabelValues("200").Inc()
	tg := Target{URL: svc.srv.URL + "/metrics", Labels: map[string]string{"job": "users", "instance": svc.srv.Listener.Addr().String()}}
	var (
		mu      sync.Mutex
		present = true
	)
	sc, err := NewScraper(store, ScrapeOptions{Interval: 50 * time.Millisecond, Targets: TargetFunc(func() []Target {
		mu.Lock()
		defer mu.Unlock()
		if present {
			return []Target{tg}
		}
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	setPresent := func(p bool) {
		mu.Lock()
		present = p
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	series := func(want int) func() error {
		return func() error {
			vec, err := store.Query(context.Background(), `up{job="users"} or http_requests_total`, time.Now())
			if err != nil {
				return err
			}
			if len(vec) != want {
				return fmt.Errorf("%d series, want %d: %v", len(vec), want, vec)
			}
			return nil
		}
	}
	nubotest.WaitFor(t, 30*time.Second, series(2))
	setPresent(false)
	nubotest.WaitFor(t, 30*time.Second, series(0))
	setPresent(true)
	nubotest.WaitFor(t, 30*time.Second, series(2))
	cancel()
	<-done
	if err := series(0)(); err != nil {
		t.Errorf("after Run returned: %v", err)
	}
	if h := sc.Health(); len(h) != 0 {
		t.Errorf("health after Run returned: %+v", h)
	}
}
