package mesh

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEgressAllowList checks a function's vpc.egress: it reaches the mesh
// names and hosts it lists and is refused the rest, through its proxy and
// through its NUBO_SERVICE_<NAME>_URL listeners; a workload without a list
// reaches everything.
func TestEgressAllowList(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 1, whoami)...)
	eps.set("orders", backends(t, 1, whoami)...)
	outside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("outside")) }))
	defer outside.Close()

	cfg := baseConfig(t, "users", "orders")
	cfg.Egress = map[string][]string{"fn": {"service:users", "database:db"}}
	m := startMesh(t, cfg, eps)

	fn := proxyClient(t, m, "fn")
	if code, body, _ := call(t, fn, "GET", "http://users/", nil); code != 200 {
		t.Errorf("allowed service: %d %s", code, body)
	}
	code, body, _ := call(t, fn, "GET", "http://orders/", nil)
	if code != http.StatusForbidden || !strings.Contains(body, `egress to "orders" denied: it is not in the vpc.egress of fn`) {
		t.Errorf("unlisted service: %d %s", code, body)
	}
	if code, body, _ := call(t, fn, "GET", outside.URL, nil); code != http.StatusForbidden || !strings.Contains(body, "127.0.0.1") {
		t.Errorf("unlisted host: %d %s", code, body)
	}
	u, err := m.ServiceURL("fn", "orders")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := call(t, http.DefaultClient, "GET", u+"/", nil); code != http.StatusForbidden {
		t.Errorf("unlisted service through NUBO_SERVICE_ORDERS_URL: %d", code)
	}

	other := proxyClient(t, m, "web")
	if code, _, _ := call(t, other, "GET", "http://orders/", nil); code != 200 {
		t.Errorf("a workload without vpc.egress is refused: %d", code)
	}
	if code, body, _ := call(t, other, "GET", outside.URL, nil); code != 200 || body != "outside" {
		t.Errorf("a workload without vpc.egress cannot go out: %d %s", code, body)
	}

	cfg.Egress["fn"] = append(cfg.Egress["fn"], "127.0.0.1")
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := call(t, fn, "GET", outside.URL, nil); code != 200 || body != "outside" {
		t.Errorf("a listed host: %d %s", code, body)
	}
}
