package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestAlertsCommands runs nubo alerts, ack, silence and unsilence against a
// real notifier's admin API.
func TestAlertsCommands(t *testing.T) {
	t.Parallel()
	n, err := alerting.New(alerting.Config{
		Channels: map[string]*spec.Channel{"chat": {Type: "log"}, "oncall": {Type: "log"}},
		Escalation: map[string]*spec.EscalationPolicy{"critical": {Steps: []*spec.EscalationStep{
			{Delay: spec.Dur("0s"), Channels: []string{"chat"}, Condition: "always"},
			{Delay: spec.Dur("15m"), Channels: []string{"oncall"}, Condition: "unacknowledged"},
		}}},
		Routes:  map[string]alerting.Route{"db_down": {Escalation: "critical"}},
		LogLine: func(string) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	now := time.Now()
	n.Update(now, []alerting.Alert{
		{Labels: map[string]string{"alertname": "db_down", "severity": "critical"}, State: alerting.StateFiring, ActiveAt: now.Add(-3 * time.Minute), FiredAt: now.Add(-time.Minute)},
		{Labels: map[string]string{"alertname": "slow_api", "severity": "warning", "route": "/a"}, State: alerting.StatePending, ActiveAt: now.Add(-20 * time.Second)},
		{Labels: map[string]string{"alertname": "slow_api", "severity": "warning", "route": "/b"}, State: alerting.StatePending, ActiveAt: now.Add(-10 * time.Second)},
	})
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	r := runInProcess(t, "alerts", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("nubo alerts:\n%s", r)
	}
	for _, re := range []string{
		`ALERT\s+STATE\s+SEVERITY\s+SINCE\s+ESCALATION\s+ACKNOWLEDGED\s+INSTANCES`,
		`db_down\s+firing\s+critical\s+1m\d+s\s+critical step 1/2, next in 1[45]m\d+s\s+-\s+1\n`,
		`slow_api\s+pending\s+warning\s+2\ds\s+-\s+-\s+2\n`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("nubo alerts output lacks %s:\n%s", re, r.stdout)
		}
	}

	r = runInProcess(t, "alerts", "ack", "db_down", "--by", "ana", "--addr", addr)
	if r.code != 0 || r.stdout != "acknowledged db_down; escalation critical stopped\n" {
		t.Errorf("nubo alerts ack:\n%s", r)
	}
	if st := n.Status(time.Now()).Alerts[0]; st.Acknowledged == nil || st.Acknowledged.By != "ana" {
		t.Errorf("not acknowledged: %+v", st)
	}

	r = runInProcess(t, "alerts", "silence", "slow_api,route=/a", "--for", "2h", "--comment", "known", "--by", "ana", "--addr", addr)
	if r.code != 0 || !regexp.MustCompile(`^silenced alertname="slow_api", route="/a" until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(silence [0-9a-f]{16}\)\n$`).MatchString(r.stdout) {
		t.Errorf("nubo alerts silence:\n%s", r)
	}
	id := regexp.MustCompile(`silence ([0-9a-f]{16})`).FindStringSubmatch(r.stdout)
	r = runInProcess(t, "alerts", "--addr", addr)
	for _, re := range []string{
		`db_down\s+firing\s+critical\s+1m\d+s\s+critical step 1/2, done\s+ana \d+s ago\s+1\n`,
		`slow_api\s+pending\s+warning\s+\d+s\s+-\s+-\s+2 \(1 silenced\)\n`,
		`silences:\n\s+ID\s+MATCHERS\s+ENDS IN\s+BY\s+COMMENT\n\s+[0-9a-f]{16}\s+alertname="slow_api", route="/a"\s+(1h59m|2h0m)\s+ana\s+known\n`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("nubo alerts after ack and silence lacks %s:\n%s", re, r.stdout)
		}
	}

	r = runInProcess(t, "alerts", "-o", "json", "--addr", addr)
	var doc alerting.Status
	if err := json.Unmarshal([]byte(r.stdout), &doc); r.code != 0 || err != nil || len(doc.Alerts) != 2 || len(doc.Silences) != 1 {
		t.Errorf("nubo alerts -o json: %v\n%s", err, r)
	}

	if len(id) == 2 {
		r = runInProcess(t, "alerts", "unsilence", id[1], "--addr", addr)
		if r.code != 0 || r.stdout != "silence "+id[1]+` (alertname="slow_api", route="/a") ended`+"\n" {
			t.Errorf("nubo alerts unsilence:\n%s", r)
		}
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"ack unknown", []string{"alerts", "ack", "nope"}, 1, `nubo: no firing alert "nope" (firing: db_down)`},
		{"ack pending", []string{"alerts", "ack", "slow_api"}, 1, `nubo: alert "slow_api" is pending, nothing to acknowledge until it fires`},
		{"silence without for", []string{"alerts", "silence", "x"}, 2, "nubo: --for is required"},
		{"silence bad for", []string{"alerts", "silence", "x", "--for", "soon"}, 2, `nubo: --for "soon": want a duration`},
		{"silence bad matcher", []string{"alerts", "silence", "a=~\"(\"", "--for", "1h"}, 2, `nubo: matcher "a=~\"(\""`},
		{"unsilence unknown", []string{"alerts", "unsilence", "nope"}, 1, `nubo: no silence "nope"`},
		{"ack without a name", []string{"alerts", "ack"}, 2, "accepts 1 arg"},
	}
	for _, tt := range tests {
		r := runInProcess(t, append(tt.args, "--addr", addr)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%s: nubo %v:\n%s\nwant exit %d, stderr with %q", tt.name, tt.args, r, tt.code, tt.stderr)
		}
	}
}

func TestAlertsNoneAndNoEngine(t *testing.T) {
	t.Parallel()
	n, err := alerting.New(alerting.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	if r := runInProcess(t, "alerts", "--addr", strings.TrimPrefix(srv.URL, "http://")); r.code != 0 || r.stdout != "no alerts pending or firing\n" {
		t.Errorf("no alerts:\n%s", r)
	}
	addr := freeAddr(t)
	if r := runInProcess(t, "alerts", "--addr", addr); r.code != 1 || !strings.Contains(r.stderr, "no nubo engine is running at "+addr) {
		t.Errorf("no engine:\n%s", r)
	}
}
