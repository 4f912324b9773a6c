package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// receiver is an HTTP endpoint that records the bodies POSTed to it and
// fails the first `fail` of them with 503.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	fail  int
	seen  int
	posts [][]byte
}

func startReceiver(t *testing.T, fail int) *receiver {
	t.Helper()
	r := &receiver{fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seen++
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if r.seen <= r.fail {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		r.posts = append(r.posts, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.posts)
}

func (r *receiver) waitPosts(t *testing.T, n int) [][]byte {
	t.Helper()
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if got := len(r.got()); got < n {
			return fmt.Errorf("%d notifications received, want %d", got, n)
		}
		return nil
	})
	return r.got()
}

func startNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

// TestWebhook delivers Alertmanager's webhook payload, version 4, for a
// firing and then a resolved alert, retrying a failed delivery.
func TestWebhook(t *testing.T) {
	t.Parallel()
	recv := startReceiver(t, 1)
	n := startNotifier(t, Config{
		Channels:    map[string]*spec.Channel{"oncall": {Type: "webhook", URL: recv.srv.URL + "/alerts"}},
		Routes:      map[string]Route{"db_down": {Channels: []string{"oncall"}}},
		ExternalURL: "http://127.0.0.1:4500",
		Retry:       Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	})
	since := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	a := firing("db_down", since, "severity", "critical", "instance", "db-1")
	a.GeneratorURL = "http://127.0.0.1:4500/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
	n.Update(since, []Alert{a})
	posts := recv.waitPosts(t, 1)

	// Field names exactly as Alertmanager's webhook receivers expect them.
	var raw map[string]any
	if err := json.Unmarshal(posts[0], &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"alerts", "commonAnnotations", "commonLabels", "externalURL", "groupKey", "groupLabels", "receiver", "status", "truncatedAlerts", "version"}; !slices.Equal(keys, want) {
		t.Errorf("payload keys %v, want %v", keys, want)
	}
	alertKeys := []string{}
	for k := range raw["alerts"].([]any)[0].(map[string]any) {
		alertKeys = append(alertKeys, k)
	}
	slices.Sort(alertKeys)
	if want := []string{"annotations", "endsAt", "fingerprint", "generatorURL", "labels", "startsAt", "status"}; !slices.Equal(alertKeys, want) {
		t.Errorf("alert keys %v, want %v", alertKeys, want)
	}
	if !strings.Contains(string(posts[0]), `"endsAt":"0001-01-01T00:00:00Z"`) {
		t.Errorf("a firing alert's endsAt is Alertmanager's zero time: %s", posts[0])
	}

	var msg WebhookMessage
	if err := json.Unmarshal(posts[0], &msg); err != nil {
		t.Fatal(err)
	}
	fp := a.Fingerprint()
	want := WebhookMessage{
		Version: "4", GroupKey: `{}:{alertname="db_down"}`, Status: "firing", Receiver: "oncall",
		GroupLabels:       map[string]string{"alertname": "db_down"},
		CommonLabels:      map[string]string{"alertname": "db_down", "severity": "critical", "instance": "db-1"},
		CommonAnnotations: map[string]string{"summary": "too many errors"},
		ExternalURL:       "http://127.0.0.1:4500",
		Alerts: []WebhookAlert{{
			Status: "firing", Labels: a.Labels, Annotations: a.Annotations, StartsAt: since,
			GeneratorURL: a.GeneratorURL, Fingerprint: fp,
		}},
	}
	if got, wantJSON := mustJSON(t, msg), mustJSON(t, want); got != wantJSON {
		t.Errorf("firing payload\n%s\nwant\n%s", got, wantJSON)
	}
	if len(fp) != 16 {
		t.Errorf("fingerprint %q: Alertmanager's are 16 hex digits", fp)
	}

	resolvedAt := since.Add(5 * time.Minute)
	n.Update(resolvedAt, nil)
	posts = recv.waitPosts(t, 2)
	if err := json.Unmarshal(posts[1], &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Status != "resolved" || len(msg.Alerts) != 1 || msg.Alerts[0].Status != "resolved" || !msg.Alerts[0].EndsAt.Equal(resolvedAt) {
		t.Errorf("resolved payload: %s", posts[1])
	}
	// The receiver has the payload a moment before the sender counts it.
	nubotest.WaitFor(t, 10*time.Second, func() error {
		ch := n.Status(time.Now()).Channels
		if len(ch) != 1 || ch[0].Sent != 2 || ch[0].Failed != 1 || !strings.Contains(ch[0].LastError, "503") {
			return fmt.Errorf("channel status %+v: want 2 sent, 1 failed with 503", ch)
		}
		return nil
	})
}

// TestWebhookFailure says why a delivery fails, without the URL's path (a
// secret for Slack).
func TestWebhookFailure(t *testing.T) {
	t.Parallel()
	recv := startReceiver(t, 100)
	n := startNotifier(t, Config{
		Channels: map[string]*spec.Channel{"chat": {Type: "slack", URL: recv.srv.URL + "/services/T000/B000/SECRET"}},
		Routes:   map[string]Route{"db_down": {Channels: []string{"chat"}}},
		Retry:    Backoff{Initial: time.Millisecond, Max: time.Millisecond},
	})
	n.Update(time.Now(), []Alert{firing("db_down", time.Now())})
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if ch := n.Status(time.Now()).Channels[0]; ch.Failed < 3 {
			return fmt.Errorf("%d failed attempts, want 3", ch.Failed)
		}
		return nil
	})
	ch := n.Status(time.Now()).Channels[0]
	if strings.Contains(ch.LastError, "SECRET") || !strings.Contains(ch.LastError, recv.srv.URL) {
		t.Errorf("last error %q: want the host, not the path", ch.LastError)
	}
}

func TestSlack(t *testing.T) {
	t.Parallel()
	recv := startReceiver(t, 0)
	n := startNotifier(t, Config{
		Channels: map[string]*spec.Channel{"chat": {Type: "slack", URL: recv.srv.URL}},
		Routes:   map[string]Route{"db_down": {Channels: []string{"chat"}}},
	})
	n.Update(time.Now(), []Alert{firing("db_down", time.Now(), "severity", "critical")})
	recv.waitPosts(t, 1)
	n.Update(time.Now(), nil)
	posts := recv.waitPosts(t, 2)
	for i, want := range []struct{ text, color, body string }{
		{"[FIRING:1] db_down", "danger", `FIRING {severity="critical"}` + "\n  summary: too many errors"},
		{"[RESOLVED] db_down", "good", `RESOLVED {severity="critical"}`},
	} {
		var m slackMessage
		if err := json.Unmarshal(posts[i], &m); err != nil {
			t.Fatal(err)
		}
		if m.Text != want.text || len(m.Attachments) != 1 || m.Attachments[0].Color != want.color || !strings.Contains(m.Attachments[0].Text, want.body) {
			t.Errorf("slack message %d: %s", i, posts[i])
		}
	}
}

// smtpServer is a small SMTP server for the test, written with
// net/textproto: it offers no TLS and no authentication and keeps the
// messages it is given.
type smtpServer struct {
	addr string
	msgs chan smtpMessage
}

type smtpMessage struct {
	hello, from string
	to          []string
	data        []byte
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &smtpServer{addr: ln.Addr().String(), msgs: make(chan smtpMessage, 10)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *smtpServer) serve(conn net.Conn) {
	defer conn.Close()
	tc := textproto.NewConn(conn)
	var m smtpMessage
	reply := func(format string, args ...any) bool { return tc.PrintfLine(format, args...) == nil }
	if !reply("220 test.local ESMTP ready") {
		return
	}
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			m.hello = arg
			reply("250-test.local greets %s", arg)
			reply("250 8BITMIME")
		case "HELO":
			m.hello = arg
			reply("250 test.local")
		case "MAIL":
			m.from = between(arg, "<", ">")
			reply("250 2.1.0 ok")
		case "RCPT":
			m.to = append(m.to, between(arg, "<", ">"))
			reply("250 2.1.5 ok")
		case "DATA":
			reply("354 end data with <CR><LF>.<CR><LF>")
			data, err := tc.ReadDotBytes()
			if err != nil {
				return
			}
			m.data = data
			reply("250 2.0.0 queued")
			s.msgs <- m
			m = smtpMessage{hello: m.hello}
		case "RSET", "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 5.5.2 not implemented")
		}
	}
}

func between(s, open, close string) string {
	_, rest, _ := strings.Cut(s, open)
	v, _, _ := strings.Cut(rest, close)
	return v
}

// TestEmail sends an alert through an SMTP server written in the test.
func TestEmail(t *testing.T) {
	t.Parallel()
	smtpd := startSMTP(t)
	host, port, _ := net.SplitHostPort(smtpd.addr)
	var p int
	fmt.Sscan(port, &p)
	n := startNotifier(t, Config{
		Channels: map[string]*spec.Channel{"mail": {
			Type: "email", To: []string{"oncall@example.com", "lead@example.com"},
			SMTP: &spec.SMTP{Host: host, Port: p},
		}},
		Routes:      map[string]Route{"db_down": {Channels: []string{"mail"}}},
		Hostname:    "laptop.local",
		ExternalURL: "http://127.0.0.1:4500",
	})
	a := firing("db_down", time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC), "severity", "critical")
	a.Annotations["description"] = "Connections to db-1 fail: “é” is fine"
	n.Update(time.Now(), []Alert{a})
	var m smtpMessage
	select {
	case m = <-smtpd.msgs:
	case <-time.After(10 * time.Second):
		t.Fatal("no mail arrived")
	}
	if m.hello != "laptop.local" || m.from != "nubo@laptop.local" || !slices.Equal(m.to, []string{"oncall@example.com", "lead@example.com"}) {
		t.Errorf("envelope: hello %q, from %q, to %v", m.hello, m.from, m.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
	if err != nil {
		t.Fatalf("not a mail message: %v\n%s", err, m.data)
	}
	if got := msg.Header.Get("Subject"); got != "[FIRING:1] db_down" {
		t.Errorf("Subject %q", got)
	}
	if got := msg.Header.Get("To"); got != "oncall@example.com, lead@example.com" {
		t.Errorf("To %q", got)
	}
	if msg.Header.Get("Message-ID") == "" || msg.Header.Get("Date") == "" {
		t.Errorf("headers lack Message-ID or Date: %v", msg.Header)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`FIRING {severity="critical"}`, "summary: too many errors", "description: Connections to db-1 fail: “é” is fine",
		"since: 2026-08-01T12:00:00Z", "Console: http://127.0.0.1:4500",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFromSpec(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(`name: shop
secrets:
  slack: {keys: [url]}
  smtp: {keys: [password]}
observability:
  alerts:
    - {name: high_error_rate, expr: 'up == 0', escalation: critical}
  channels:
    chat: {type: slack, url: "${secrets.slack.url}"}
    mail: {type: email, to: [a@example.com], smtp: {host: smtp.example.com, port: 587, username: alerts, password: "${secrets.smtp.password}"}}
  escalation:
    critical:
      steps:
        - {delay: 0s, channels: [chat]}
        - {delay: 15m, channels: [mail], condition: unacknowledged}
  slos:
    avail:
      objective: 99.9
      indicators:
        - {name: a, type: ratio, errors: 'sum(rate(e[{{.window}}]))', total: 'sum(rate(t[{{.window}}]))'}
      alerting:
        page: {escalation: critical}
        ticket: {channels: [mail]}
databases:
  users-db:
    type: postgres
    monitoring:
      alerts:
        - {name: users-db-connections-high, expr: 'pg_stat_activity_count > 80', channels: [chat]}
`))
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{"secrets.slack.url": "https://hooks.slack.com/services/T/B/X", "secrets.smtp.password": "hunter2"}
	cfg, err := FromSpec(app, func(expr string) (string, error) {
		if v, ok := vals[expr]; ok {
			return v, nil
		}
		return "", fmt.Errorf("no value for %s", expr)
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Channels["chat"].URL != vals["secrets.slack.url"] || cfg.Channels["mail"].SMTP.Password != "hunter2" {
		t.Errorf("secrets not resolved: %+v %+v", cfg.Channels["chat"], cfg.Channels["mail"].SMTP)
	}
	if app.Observability.Channels["chat"].URL != "${secrets.slack.url}" {
		t.Error("FromSpec changed the spec")
	}
	wantRoutes := map[string]Route{
		"high_error_rate":           {Escalation: "critical"},
		"users-db-connections-high": {Channels: []string{"chat"}},
		"slo:avail:page":            {Escalation: "critical"},
		"slo:avail:ticket":          {Channels: []string{"mail"}},
	}
	if got, want := mustJSON(t, cfg.Routes), mustJSON(t, wantRoutes); got != want {
		t.Errorf("routes\n%s\nwant\n%s", got, want)
	}
	if _, err := New(cfg); err != nil {
		t.Errorf("New(FromSpec(...)): %v", err)
	}
}
