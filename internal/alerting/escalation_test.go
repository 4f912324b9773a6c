package alerting

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// lines collects what log channels write, with the bubble's time.
type lines struct {
	mu    sync.Mutex
	start time.Time
	got   []line
}

type line struct {
	at   time.Duration
	text string
}

func (l *lines) add(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, line{time.Since(l.start), text})
}

// String lists the lines by time; lines written at the same time by
// different channels' goroutines are sorted by text.
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	sorted := slices.Clone(l.got)
	slices.SortStableFunc(sorted, func(a, b line) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return strings.Compare(a.text, b.text)
	})
	out := make([]string, len(sorted))
	for i, ln := range sorted {
		out[i] = fmt.Sprintf("%s %s", ln.at, ln.text)
	}
	return strings.Join(out, "\n")
}

// logChannels are log channels by name.
func logChannels(names ...string) map[string]*spec.Channel {
	m := map[string]*spec.Channel{}
	for _, n := range names {
		m[n] = &spec.Channel{Type: "log"}
	}
	return m
}

func step(delay string, condition string, channels ...string) *spec.EscalationStep {
	return &spec.EscalationStep{Delay: spec.Dur(delay), Channels: channels, Condition: condition}
}

func firing(name string, since time.Time, lbls ...string) Alert {
	l := map[string]string{AlertNameLabel: name}
	for i := 0; i+1 < len(lbls); i += 2 {
		l[lbls[i]] = lbls[i+1]
	}
	return Alert{Labels: l, Annotations: map[string]string{"summary": "too many errors"}, State: StateFiring, Value: "1", ActiveAt: since, FiredAt: since}
}

// TestEscalation runs policies in fake time: each step after its delay,
// repeats up to maxRepeat, and an acknowledgement skipping the
// unacknowledged steps and the repeats while always steps still run.
func TestEscalation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy *spec.EscalationPolicy
		ackAt  time.Duration // 0: never
		// resolveAt ends the incident; 0: never.
		resolveAt time.Duration
		want      []string
		wantStep  EscalationStatus
	}{
		{
			name: "steps and repeats until maxRepeat",
			policy: &spec.EscalationPolicy{
				Steps:  []*spec.EscalationStep{step("0s", "always", "chat"), step("5m", "unacknowledged", "oncall")},
				Repeat: true, MaxRepeat: 2,
			},
			want: []string{
				"0s [chat] [FIRING:1] db_down (escalation critical, step 1 of 2)",
				"5m0s [chat] [FIRING:1] db_down (escalation critical, step 1 of 2, repeat 1 of 2)",
				"5m0s [oncall] [FIRING:1] db_down (escalation critical, step 2 of 2)",
				"10m0s [chat] [FIRING:1] db_down (escalation critical, step 1 of 2, repeat 2 of 2)",
				"10m0s [oncall] [FIRING:1] db_down (escalation critical, step 2 of 2, repeat 1 of 2)",
				"15m0s [oncall] [FIRING:1] db_down (escalation critical, step 2 of 2, repeat 2 of 2)",
			},
			wantStep: EscalationStatus{Policy: "critical", Step: 2, Steps: 2, Repeat: 2, MaxRepeat: 2, Done: true},
		},
		{
			name: "ack stops the unacknowledged steps and the repeats",
			policy: &spec.EscalationPolicy{
				Steps:  []*spec.EscalationStep{step("0s", "always", "chat"), step("5m", "unacknowledged", "oncall")},
				Repeat: true, MaxRepeat: 3,
			},
			ackAt: 2 * time.Minute,
			want: []string{
				"0s [chat] [FIRING:1] db_down (escalation critical, step 1 of 2)",
			},
			wantStep: EscalationStatus{Policy: "critical", Step: 1, Steps: 2, MaxRepeat: 3, Done: true},
		},
		{
			name: "an always step still runs after the ack",
			policy: &spec.EscalationPolicy{
				Steps: []*spec.EscalationStep{
					step("1m", "always", "chat"), step("5m", "unacknowledged", "oncall"), step("10m", "always", "manager"),
				},
			},
			ackAt: 2 * time.Minute,
			want: []string{
				"1m0s [chat] [FIRING:1] db_down (escalation critical, step 1 of 3)",
				"16m0s [manager] [FIRING:1] db_down (escalation critical, step 3 of 3)",
			},
			wantStep: EscalationStatus{Policy: "critical", Step: 3, Steps: 3, Done: true},
		},
		{
			name: "resolution ends the escalation and tells who was notified",
			policy: &spec.EscalationPolicy{
				Steps: []*spec.EscalationStep{step("0s", "always", "chat"), step("5m", "unacknowledged", "oncall")},
			},
			resolveAt: 3 * time.Minute,
			want: []string{
				"0s [chat] [FIRING:1] db_down (escalation critical, step 1 of 2)",
				`3m0s [chat] [RESOLVED] db_down; resolved {severity="critical"}: too many errors`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				out := &lines{start: time.Now()}
				n, err := New(Config{
					Channels:   logChannels("chat", "oncall", "manager"),
					Escalation: map[string]*spec.EscalationPolicy{"critical": tt.policy},
					Routes:     map[string]Route{"db_down": {Escalation: "critical"}},
					LogLine:    func(l string) { out.add(strings.SplitN(l, ";", 2)[0] + tail(l)) },
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := n.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				defer n.Stop(context.Background())
				alert := firing("db_down", time.Now(), "severity", "critical")
				n.Update(time.Now(), []Alert{alert})
				var acked, resolved bool
				for elapsed := time.Duration(0); elapsed <= 20*time.Minute; elapsed += time.Minute {
					if tt.ackAt != 0 && !acked && elapsed >= tt.ackAt {
						if _, err := n.Ack("db_down", "ana", time.Now()); err != nil {
							t.Fatal(err)
						}
						acked = true
					}
					if tt.resolveAt != 0 && !resolved && elapsed >= tt.resolveAt {
						n.Update(time.Now(), nil)
						resolved = true
					}
					time.Sleep(time.Minute)
					synctest.Wait()
				}
				if got, want := out.String(), strings.Join(tt.want, "\n"); got != want {
					t.Errorf("notifications:\n%s\nwant:\n%s", got, want)
				}
				if tt.resolveAt != 0 {
					if st := n.Status(time.Now()); len(st.Alerts) != 0 {
						t.Errorf("after resolution the status still lists %+v", st.Alerts)
					}
					return
				}
				st := n.Status(time.Now())
				if len(st.Alerts) != 1 || st.Alerts[0].Escalation == nil {
					t.Fatalf("status: %+v", st.Alerts)
				}
				if got := *st.Alerts[0].Escalation; got != tt.wantStep {
					t.Errorf("escalation status %+v, want %+v", got, tt.wantStep)
				}
				if acked && (st.Alerts[0].Acknowledged == nil || st.Alerts[0].Acknowledged.By != "ana") {
					t.Errorf("acknowledgement not reported: %+v", st.Alerts[0].Acknowledged)
				}
			})
		})
	}
}

// tail keeps the resolved alerts' part of a log line, which says what was
// resolved; firing lines are compared by their subject only.
func tail(l string) string {
	if strings.Contains(l, "[RESOLVED]") {
		_, rest, _ := strings.Cut(l, ";")
		return ";" + rest
	}
	return ""
}

// TestIncidents checks the notifications of one group as alerts fire,
// join, resolve one by one and all resolve.
func TestIncidents(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		out := &lines{start: time.Now()}
		n, err := New(Config{
			Channels: logChannels("chat"),
			Routes:   map[string]Route{"high_latency": {Channels: []string{"chat"}}},
			LogLine:  out.add,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer n.Stop(context.Background())
		now := time.Now()
		a := firing("high_latency", now, "route", "/a")
		b := firing("high_latency", now, "route", "/b")
		pending := a
		pending.State, pending.FiredAt = StatePending, time.Time{}
		steps := [][]Alert{
			{pending},   // pending notifies nobody
			{a},         // opens the incident
			{a},         // nothing new
			{a, b},      // b joins
			{b},         // a resolves
			nil,         // b resolves: the incident closes
			{a},         // a new incident
			{pending},   // back to pending: resolved
			{unknown()}, // another alert with no route: logged
		}
		for _, alerts := range steps {
			n.Update(time.Now(), alerts)
			synctest.Wait()
			time.Sleep(time.Second)
		}
		want := strings.Join([]string{
			`1s [chat] [FIRING:1] high_latency; firing {route="/a"}: too many errors`,
			`3s [chat] [FIRING:2] high_latency; firing {route="/a"}: too many errors; firing {route="/b"}: too many errors`,
			`4s [chat] [FIRING:1] high_latency; firing {route="/b"}: too many errors; resolved {route="/a"}: too many errors`,
			`5s [chat] [RESOLVED] high_latency; resolved {route="/b"}: too many errors`,
			`6s [chat] [FIRING:1] high_latency; firing {route="/a"}: too many errors`,
			`7s [chat] [RESOLVED] high_latency; resolved {route="/a"}: too many errors`,
			`8s alert disk_full firing (1 alert); no channel or escalation routes it`,
		}, "\n")
		if got := out.String(); got != want {
			t.Errorf("notifications:\n%s\nwant:\n%s", got, want)
		}
	})
}

func unknown() Alert { return firing("disk_full", time.Now()) }

// TestSilences mutes a firing alert, which leaves without a resolved
// notification, and notifies it again once the silence ends.
func TestSilences(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		out := &lines{start: time.Now()}
		dir := t.TempDir()
		n, err := New(Config{
			Channels: logChannels("chat"),
			Routes:   map[string]Route{"db_down": {Channels: []string{"chat"}}},
			LogLine:  out.add,
			Dir:      dir,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer n.Stop(context.Background())
		a := firing("db_down", time.Now(), "severity", "critical")
		n.Update(time.Now(), []Alert{a})
		synctest.Wait()
		time.Sleep(time.Minute)
		s, err := n.AddSilence(`alertname=db_down,severity=~"crit.*"`, 10*time.Minute, "ana", "maintenance", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if s.Matchers != `alertname="db_down", severity=~"crit.*"` || s.State != "active" {
			t.Errorf("silence %+v", s)
		}
		st := n.Status(time.Now())
		if len(st.Alerts) != 1 || !st.Alerts[0].Silenced || st.Alerts[0].Instances[0].SilencedBy != s.ID {
			t.Errorf("silenced alert status %+v", st.Alerts)
		}
		for range 12 { // the alert goes on firing through the silence
			n.Update(time.Now(), []Alert{a})
			time.Sleep(time.Minute)
			synctest.Wait()
		}
		want := strings.Join([]string{
			`0s [chat] [FIRING:1] db_down; firing {severity="critical"}: too many errors`,
			`11m0s [chat] [FIRING:1] db_down; firing {severity="critical"}: too many errors`,
		}, "\n")
		if got := out.String(); got != want {
			t.Errorf("notifications:\n%s\nwant:\n%s", got, want)
		}
		if got := n.Silences(time.Now()); len(got) != 1 || got[0].State != "expired" {
			t.Errorf("silences after the end: %+v", got)
		}

		// Silences outlive the notifier.
		n2, err := New(Config{Channels: logChannels("chat"), Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := n2.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer n2.Stop(context.Background())
		if got := n2.Silences(time.Now()); len(got) != 1 || got[0].ID != s.ID || got[0].Comment != "maintenance" {
			t.Errorf("silences loaded: %+v", got)
		}
	})
}

func TestParseMatchers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "high_error_rate", want: `alertname="high_error_rate"`},
		{in: "users-db-connections-high", want: `alertname="users-db-connections-high"`},
		{in: "alertname=high_error_rate", want: `alertname="high_error_rate"`},
		{in: `{severity=~"crit.*", team!="ops"}`, want: `severity=~"crit.*", team!="ops"`},
		{in: `service="a,b", env!~dev`, want: `service="a,b", env!~"dev"`},
		{in: `slo="users",slo_alert=page`, want: `slo="users", slo_alert="page"`},
		{in: "slow_api, route=/a", want: `alertname="slow_api", route="/a"`},
		{in: "", err: "no matchers"},
		{in: "a=b,=c", err: `matcher "=c": want NAME=VALUE`},
		{in: `a=~"("`, err: `matcher "a=~\"(\""`},
		{in: `a="unterminated`, err: "bad quoted value"},
	}
	for _, tt := range tests {
		ms, err := ParseMatchers(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMatchers(%q) = %v, want error with %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || matchersText(ms) != tt.want {
			t.Errorf("ParseMatchers(%q) = %s, %v; want %s", tt.in, matchersText(ms), err, tt.want)
		}
	}
}

func TestNewChecksReferences(t *testing.T) {
	t.Parallel()
	_, err := New(Config{
		Channels:   map[string]*spec.Channel{"hook": {Type: "webhook"}},
		Escalation: map[string]*spec.EscalationPolicy{"p": {Steps: []*spec.EscalationStep{step("0s", "always", "pager")}}},
		Routes:     map[string]Route{"a": {Escalation: "nope", Channels: []string{"mail"}}},
	})
	for _, want := range []string{
		`channel "hook": a webhook channel needs url`,
		`escalation "p" step 1: no channel "pager"`,
		`alert "a": no escalation policy "nope"`,
		`alert "a": no channel "mail"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v; want an error with %q", err, want)
		}
	}
}
