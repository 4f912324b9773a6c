package mesh

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// spanLog is a Tracer that keeps the spans.
type spanLog struct {
	mu    sync.Mutex
	spans []Span
}

func (l *spanLog) ExportSpan(s Span) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spans = append(l.spans, s)
}

func (l *spanLog) last() Span {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spans[len(l.spans)-1]
}

// TestSpanRetriesEjectionsAndDenials: a hop that was retried carries a
// retry event naming the replica and its status, and the outlier
// ejection its failure caused; a hop a policy denied names the policy.
// A hop with neither carries no events.
func TestSpanRetriesEjectionsAndDenials(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 2, func(i int, w http.ResponseWriter, r *http.Request) {
		if i == 1 {
			http.Error(w, "boom", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, i)
	})...)
	eps.set("payments", backends(t, 1, whoami)...)
	cfg := baseConfig(t, "payments")
	cfg.Services["users"] = traffic(spec.Traffic{
		Retry: &spec.Retry{Attempts: 2, On: []string{"5xx"}},
		CircuitBreaker: &spec.CircuitBreaker{ConsecutiveErrors: 1, Interval: dur(time.Hour), Timeout: dur(time.Hour),
			MaxEjectionPercent: 50},
	})
	cfg.Mesh.Policies = []*spec.Policy{{Name: "no-orders-payments", To: "payments", Action: "deny",
		From: spec.PolicySource{Principals: []string{"orders"}}}}
	spans := &spanLog{}
	cfg.Tracer = spans
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "orders")

	// Round robin sends one of the first two requests to replica 1,
	// which fails, is ejected and retried on replica 0.
	var retried Span
	for i := 0; i < 2 && len(retried.Events) == 0; i++ {
		if code, body := get(t, c, "http://users/"); code != 200 || body != "0" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		if s := spans.last(); len(s.Events) > 0 {
			retried = s
		} else if s.Status != 200 {
			t.Errorf("an untried hop: %+v", s)
		}
	}
	if len(retried.Events) != 2 {
		t.Fatalf("events %+v, want the ejection and the retry", retried.Events)
	}
	ej, re := retried.Events[0], retried.Events[1]
	if ej.Name != "outlier ejection" || ej.Replica == "" || ej.Attempt != 1 {
		t.Errorf("ejection event %+v", ej)
	}
	if re.Name != "retry" || re.Replica != ej.Replica || re.Status != 503 || re.Attempt != 1 || re.Time.Before(retried.Start) {
		t.Errorf("retry event %+v", re)
	}
	if retried.Status != 200 || retried.Upstream == ej.Replica {
		t.Errorf("retried hop ended %d on %s", retried.Status, retried.Upstream)
	}
	// Replica 1 is out: the next hop is plain.
	get(t, c, "http://users/")
	if s := spans.last(); len(s.Events) != 0 || s.Denied != "" {
		t.Errorf("a plain hop has %+v, denied %q", s.Events, s.Denied)
	}

	if code, _ := get(t, c, "http://payments/"); code != http.StatusForbidden {
		t.Fatalf("denied call: %d", code)
	}
	if s := spans.last(); s.Status != 403 || s.Denied != "no-orders-payments" {
		t.Errorf("denied hop: status %d, denied %q", s.Status, s.Denied)
	}
}
