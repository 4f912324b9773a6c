package alerting

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestHandler drives the admin API over HTTP: listing, acknowledging and
// silencing, with the errors' statuses and messages.
func TestHandler(t *testing.T) {
	t.Parallel()
	n := startNotifier(t, Config{Channels: logChannels("chat"), Routes: map[string]Route{"db_down": {Channels: []string{"chat"}}}})
	now := time.Now()
	pending := firing("slow", now)
	pending.State, pending.FiredAt = StatePending, time.Time{}
	n.Update(now, []Alert{firing("db_down", now, "severity", "critical"), pending})
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)

	do := func(method, path, contentType, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		return resp.StatusCode, string(b)
	}

	code, body := do("GET", "/admin/v1/alerts", "", "")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("GET alerts: %d %v\n%s", code, err, body)
	}
	if len(st.Alerts) != 2 || st.Alerts[0].Name != "db_down" || st.Alerts[0].State != StateFiring || st.Alerts[0].Severity != "critical" ||
		st.Alerts[1].Name != "slow" || st.Alerts[1].State != StatePending || len(st.Channels) != 1 || st.Silences == nil {
		t.Errorf("GET alerts:\n%s", body)
	}
	for _, key := range []string{`"alerts":`, `"silences":[]`, `"channels":`, `"instances":`, `"fingerprint":`, `"route":{"channels":["chat"]}`, `"notified":["chat"]`} {
		if !strings.Contains(body, key) {
			t.Errorf("GET alerts lacks %s:\n%s", key, body)
		}
	}

	tests := []struct {
		name, method, path, ctype, body string
		code                            int
		want                            string
	}{
		{"ack unknown", "POST", "/admin/v1/alerts/nope/ack", "", "", 404, `{"error":"no firing alert \"nope\" (firing: db_down)"}`},
		{"ack pending", "POST", "/admin/v1/alerts/slow/ack", "", "", 409, `{"error":"alert \"slow\" is pending, nothing to acknowledge until it fires"}`},
		{"ack", "POST", "/admin/v1/alerts/db_down/ack?by=ana", "", "", 200, `"acknowledged":{"by":"ana"`},
		{"silence json", "POST", "/admin/v1/silences", "application/json", `{"matchers":"slow","for":"1h","comment":"known","createdBy":"ana"}`, 201, `"matchers":"alertname=\"slow\"","startsAt"`},
		{"silence form", "POST", "/admin/v1/silences", "application/x-www-form-urlencoded", url.Values{"matchers": {"severity=critical"}, "for": {"30m"}}.Encode(), 201, `"state":"active"`},
		{"silence query", "POST", "/admin/v1/silences?matchers=team%3Dops&for=2d", "", "", 201, `"matchers":"team=\"ops\""`},
		{"silence no duration", "POST", "/admin/v1/silences?matchers=x", "", "", 400, `{"error":"silence: give for (e.g. 1h) or endsAt"}`},
		{"silence bad matcher", "POST", "/admin/v1/silences?matchers=a%3D~%22(%22&for=1h", "", "", 400, `{"error":"silence: matcher`},
		{"silence bad json", "POST", "/admin/v1/silences", "application/json", `{`, 400, `{"error":"silence: body is not a JSON silence request`},
		{"silence past", "POST", "/admin/v1/silences?matchers=x&endsAt=2000-01-01T00:00:00Z", "", "", 400, `is in the past`},
		{"expire unknown", "DELETE", "/admin/v1/silences/nope", "", "", 404, `{"error":"no silence \"nope\""}`},
	}
	for _, tt := range tests {
		code, body := do(tt.method, tt.path, tt.ctype, tt.body)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s\nwant %d with %s", tt.name, code, body, tt.code, tt.want)
		}
	}

	code, body = do("GET", "/admin/v1/silences", "", "")
	var sils []Silence
	if err := json.Unmarshal([]byte(body), &sils); code != 200 || err != nil || len(sils) != 3 {
		t.Fatalf("GET silences: %d %v\n%s", code, err, body)
	}
	code, body = do("DELETE", "/admin/v1/silences/"+sils[0].ID, "", "")
	if code != 200 || !strings.Contains(body, `"state":"expired"`) {
		t.Errorf("DELETE silence: %d %s", code, body)
	}
	// The silence of severity=critical muted db_down, which closed its
	// incident and with it the acknowledgement.
	st = n.Status(time.Now())
	if !st.Alerts[0].Silenced || st.Alerts[0].Acknowledged != nil || !st.Alerts[0].FiredAt.IsZero() {
		t.Errorf("db_down should be silenced, its incident closed: %+v", st.Alerts[0])
	}
}
