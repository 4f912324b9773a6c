package mesh

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// TestWeightedRoute splits "users" 90/10 over two services; the share of
// v2 must be within chanceZ standard deviations of 10%.
func TestWeightedRoute(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "v1") })...)
	eps.set("users-v2", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "v2") })...)
	cfg := baseConfig(t, "users", "users-v2")
	cfg.Mesh.Routes = map[string][]*spec.RouteDestination{"users": {
		{Destination: "users", Weight: 90}, {Destination: "users-v2", Weight: 10},
	}}
	m := startMesh(t, cfg, eps)
	const n = 2000
	got := counts(t, proxyClient(t, m, "orders"), "http://users.shop.svc.cluster.local/", n)
	if got["v1"]+got["v2"] != n || !withinBinomial(got["v2"], n, 0.1, chanceZ) {
		t.Errorf("90/10 split over %d requests gave %v", n, got)
	}
	// The v2 service is still reachable by its own name.
	if got := counts(t, proxyClient(t, m, "orders"), "http://users-v2/", 10); got["v2"] != 10 {
		t.Errorf("users-v2 by name: %v", got)
	}
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	eps := newFakeEndpoints()
	for _, s := range []string{"abort", "delay", "always"} {
		eps.set(s, backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
			if s == "always" {
				hits.Add(1)
			}
			fmt.Fprint(w, "ok")
		})...)
	}
	cfg := baseConfig(t)
	cfg.Services["abort"] = traffic(spec.Traffic{Fault: &spec.Fault{Abort: &spec.FaultAbort{Percent: 30, Status: 418}}})
	cfg.Services["delay"] = traffic(spec.Traffic{Fault: &spec.Fault{Delay: &spec.FaultDelay{Percent: 100, Fixed: dur(80 * time.Millisecond)}}})
	cfg.Services["always"] = traffic(spec.Traffic{
		Fault: &spec.Fault{Abort: &spec.FaultAbort{Percent: 100, Status: 503}},
		Retry: &spec.Retry{Attempts: 3, On: []string{"5xx"}},
	})
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "orders")

	const n = 1000
	aborted := 0
	for i := 0; i < n; i++ {
		code, body := get(t, c, "http://abort/")
		switch {
		case code == 418 && body == "fault filter abort":
			aborted++
		case code != 200:
			t.Fatalf("unexpected answer %d %q", code, body)
		}
	}
	if !withinBinomial(aborted, n, 0.3, chanceZ) {
		t.Errorf("%d of %d requests aborted, want about 30%%", aborted, n)
	}

	start := time.Now()
	if code, _ := get(t, c, "http://delay/"); code != 200 || time.Since(start) < 80*time.Millisecond {
		t.Errorf("100%% delay of 80ms: %d after %v", code, time.Since(start))
	}

	// An abort is the caller's own sidecar answering: never retried, and
	// the replica never sees the request.
	if code, body := get(t, c, "http://always/"); code != 503 || body != "fault filter abort" || hits.Load() != 0 {
		t.Errorf("100%% abort with retries: %d %q, replica hit %d times", code, body, hits.Load())
	}
}

// TestPolicyMatrix runs Istio's evaluation order over a table of callers
// and requests.
func TestPolicyMatrix(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	for _, s := range []string{"users", "orders", "payments", "audit-me", "open"} {
		eps.set(s, backends(t, 1, whoami)...)
	}
	logs := &syncBuffer{}
	cfg := baseConfig(t, "users", "orders", "payments", "audit-me", "open")
	cfg.Logger = testLogger(t, logs)
	cfg.Mesh.Policies = []*spec.Policy{
		// users: only orders may read, only under /users/.
		{Name: "orders-reads-users", To: "users", Action: "allow",
			From: spec.PolicySource{Principals: []string{"orders"}},
			When: []*spec.PolicyCondition{
				{Key: "request.method", Values: []string{"GET", "HEAD"}},
				{Key: "request.path", Values: []string{"/users/*"}},
			}},
		// users: admins by header, from the namespace shop.
		{Name: "admins", To: "users", Action: "allow",
			From: spec.PolicySource{Namespaces: []string{"shop"}},
			When: []*spec.PolicyCondition{{Key: "request.headers[x-role]", Values: []string{"admin"}}}},
		// everything: nobody may call */internal.
		{Name: "no-internal", To: "*", Action: "deny",
			When: []*spec.PolicyCondition{{Key: "request.path", Values: []string{"*/internal"}}}},
		// payments: deny one caller, allow the rest (no allow policy).
		{Name: "no-web-payments", To: "payments", Action: "deny", From: spec.PolicySource{Principals: []string{"web"}}},
		// orders: any authenticated caller from another namespace is denied.
		{Name: "only-shop", To: "orders", Action: "allow", From: spec.PolicySource{Namespaces: []string{"shop"}}},
		// audit: marks but does not decide.
		{Name: "watch", To: "audit-me", Action: "audit", From: spec.PolicySource{Principals: []string{"*"}}},
		// SPIFFE form of a principal, as written for Kubernetes.
		{Name: "spiffe", To: "open", Action: "allow", From: spec.PolicySource{Principals: []string{"cluster.local/ns/shop/sa/orders"}}},
	}
	m := startMesh(t, cfg, eps)
	for _, tc := range []struct {
		caller, method, url string
		hdr                 []string
		want                int
	}{
		{"orders", "GET", "http://users/users/1", nil, 200},
		{"orders", "HEAD", "http://users/users/1", nil, 200},
		{"orders", "POST", "http://users/users/1", nil, 403},
		{"orders", "GET", "http://users/other", nil, 403},
		{"orders", "GET", "http://users/users/../other", nil, 403},
		{"web", "GET", "http://users/users/1", nil, 403},
		{"web", "DELETE", "http://users/anything", []string{"X-Role", "admin"}, 200},
		{"web", "DELETE", "http://users/anything", []string{"X-Role", "guest"}, 403},
		{"orders", "GET", "http://users/users/internal", nil, 403}, // deny wins over allow
		{"web", "GET", "http://payments/x", nil, 403},
		{"orders", "GET", "http://payments/x", nil, 200},
		{"orders", "GET", "http://payments/a/internal", nil, 403},
		{"web", "GET", "http://orders/x", nil, 200},
		{"web", "GET", "http://audit-me/x", nil, 200},
		{"orders", "GET", "http://open/x", nil, 200},
		{"web", "GET", "http://open/x", nil, 403},
	} {
		code, body, _ := call(t, proxyClient(t, m, tc.caller), tc.method, tc.url, nil, tc.hdr...)
		if code != tc.want {
			t.Errorf("%s: %s %s %v = %d, want %d", tc.caller, tc.method, tc.url, tc.hdr, code, tc.want)
		}
		if code == 403 && tc.method != "HEAD" && body != "RBAC: access denied" {
			t.Errorf("denied body %q, want Envoy's", body)
		}
	}
	if !strings.Contains(logs.String(), "policy=watch") {
		t.Errorf("audit policy logged nothing:\n%s", logs.String())
	}

	// enforcement: audit logs the denial and lets the request through.
	cfg.Mesh.Enforcement = "audit"
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, proxyClient(t, m, "web"), "http://payments/x"); code != 200 {
		t.Errorf("audit enforcement: %d, want 200", code)
	}
	if !strings.Contains(logs.String(), "would be denied") || !strings.Contains(logs.String(), "policy=no-web-payments") {
		t.Errorf("audit enforcement did not log the denial:\n%s", logs.String())
	}
}

// TestAuthzTCPSemantics checks the rules of a CONNECT tunnel carrying TLS,
// where only the caller is known.
func TestAuthzTCPSemantics(t *testing.T) {
	t.Parallel()
	allowGET := &policy{action: "allow", when: []condition{{key: keyMethod, values: []matcher{compileMatcher("GET")}}}, httpOnly: true}
	denyWebGET := &policy{action: "deny", principals: []matcher{compileMatcher("web")}, when: allowGET.when, httpOnly: true}
	src := peer{principal: "web", namespace: "shop"}
	if (&authz{allow: []*policy{allowGET}}).check(src, nil).allowed {
		t.Error("an allow rule with HTTP conditions matched a TCP tunnel")
	}
	if (&authz{deny: []*policy{denyWebGET}}).check(src, nil).allowed {
		t.Error("a deny rule with HTTP conditions did not match a TCP tunnel on its other fields")
	}
	if !(&authz{deny: []*policy{denyWebGET}}).check(peer{principal: "orders", namespace: "shop"}, nil).allowed {
		t.Error("a deny rule matched another caller")
	}
}

func TestMatcher(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, value string
		want           bool
	}{
		{"GET", "GET", true}, {"GET", "get", false}, {"/api/*", "/api/x", true}, {"/api/*", "/ap", false},
		{"*/x", "/a/x", true}, {"*/x", "/a/y", false}, {"*", "anything", true}, {"*", "", false},
	} {
		if got := compileMatcher(tc.pattern).match(tc.value); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}
