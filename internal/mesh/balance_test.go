package mesh

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

func TestNames(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	var mu sync.Mutex
	var hosts []string
	eps.set("users", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		fmt.Fprint(w, "users")
	})...)
	m := startMesh(t, baseConfig(t, "users"), eps)
	c := proxyClient(t, m, "orders")
	for _, tc := range []struct {
		url  string
		code int
		body string
	}{
		{"http://users/x", 200, "users"},
		{"http://users:80/x", 200, "users"},
		{"http://USERS/x", 200, "users"},
		{"http://users.shop/x", 200, "users"},
		{"http://users.shop.svc/x", 200, "users"},
		{"http://users.shop.svc.cluster.local/x", 200, "users"},
		{"http://users:8080/x", 503, `service "users" has no port 8080`},
		{"http://users.other.invalid/x", 502, "upstream connect error"},
	} {
		code, body := get(t, c, tc.url)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s = %d %q, want %d with %q", tc.url, code, body, tc.code, tc.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) == 0 || hosts[0] != "users" {
		t.Errorf("the replica saw Host %q, want the name it was called by", hosts)
	}
}

func TestRoundRobinAndRandom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		alg   string
		exact bool
	}{{"round_robin", true}, {"random", false}} {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			eps := newFakeEndpoints()
			eps.set("users", backends(t, 3, whoami)...)
			cfg := baseConfig(t, "users")
			cfg.Services["users"] = traffic(spec.Traffic{LoadBalancing: spec.LoadBalancing{Algorithm: tc.alg}})
			m := startMesh(t, cfg, eps)
			const n = 900
			got := counts(t, proxyClient(t, m, "orders"), "http://users/", n)
			for _, r := range []string{"0", "1", "2"} {
				if tc.exact && got[r] != n/3 {
					t.Errorf("replica %s got %d of %d requests, want exactly %d: %v", r, got[r], n, n/3, got)
				}
				if !tc.exact && !withinBinomial(got[r], n, 1.0/3, chanceZ) {
					t.Errorf("replica %s got %d of %d requests, not within %g sd of %d: %v", r, got[r], n, chanceZ, n/3, got)
				}
			}
		})
	}
}

// TestLeastRequest holds one request on a replica: with two replicas, the
// power of two choices always sees both, so every other request goes to
// the idle one.
func TestLeastRequest(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 2, func(i int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			<-release
		}
		fmt.Fprint(w, i)
	})...)
	cfg := baseConfig(t, "users")
	cfg.Services["users"] = traffic(spec.Traffic{LoadBalancing: spec.LoadBalancing{Algorithm: "least_request"}})
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "orders")
	held := make(chan string, 1)
	go func() {
		resp, err := c.Get("http://users/?hold=1")
		if err != nil {
			held <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		held <- string(b)
	}()
	busy := ""
	nubotest.WaitFor(t, 10*time.Second, func() error {
		for _, e := range m.EndpointStatus("users") {
			if e.Active == 1 {
				busy = e.ID
				return nil
			}
		}
		return fmt.Errorf("no replica holds the request: %+v", m.EndpointStatus("users"))
	})
	idle := "0"
	if busy == "users-0" {
		idle = "1"
	}
	got := counts(t, c, "http://users/", 50)
	if got[idle] != 50 {
		t.Errorf("requests went to %v, want all 50 to the idle replica %s", got, idle)
	}
	close(release)
	if b := <-held; b == idle {
		t.Errorf("held request answered by %q, the idle replica", b)
	}
}

func TestStickySessions(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 3, whoami)...)
	eps.set("carts", backends(t, 3, whoami)...)
	cfg := baseConfig(t)
	cfg.Services["users"] = traffic(spec.Traffic{LoadBalancing: spec.LoadBalancing{
		Algorithm: "ring_hash", Sticky: &spec.Sticky{Header: "x-user-id"}}})
	cfg.Services["carts"] = traffic(spec.Traffic{LoadBalancing: spec.LoadBalancing{
		Sticky: &spec.Sticky{Cookie: &spec.StickyCookie{Name: "sid", TTL: dur(time.Hour)}}}})
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "orders")

	t.Run("header", func(t *testing.T) {
		seen := map[string]bool{}
		for k := 0; k < 20; k++ {
			key := fmt.Sprintf("user-%d", k)
			got := counts(t, c, "http://users/", 10, "X-User-Id", key)
			if len(got) != 1 {
				t.Errorf("key %s went to %v, want one replica", key, got)
			}
			for r := range got {
				seen[r] = true
			}
		}
		if len(seen) < 2 {
			t.Errorf("20 keys all hashed to %v: the ring does not spread", seen)
		}
	})
	t.Run("cookie", func(t *testing.T) {
		seen := map[string]bool{}
		for k := 0; k < 20; k++ {
			jar, _ := cookiejar.New(nil)
			cc := &http.Client{Transport: c.Transport, Jar: jar}
			code, first, hdr := call(t, cc, http.MethodGet, "http://carts/", nil)
			if code != 200 || !strings.Contains(hdr.Get("Set-Cookie"), "sid=") || !strings.Contains(hdr.Get("Set-Cookie"), "Max-Age=3600") {
				t.Fatalf("first response %d, Set-Cookie %q: want the sticky cookie with its TTL", code, hdr.Get("Set-Cookie"))
			}
			got := counts(t, cc, "http://carts/", 10)
			if len(got) != 1 || got[first] != 10 {
				t.Errorf("client %d: first on %s, then %v: want every request on the first replica", k, first, got)
			}
			seen[first] = true
		}
		if len(seen) < 2 {
			t.Errorf("20 sessions all landed on %v", seen)
		}
	})
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"sticky with header and cookie", func(c *Config) {
			c.Services["users"] = traffic(spec.Traffic{LoadBalancing: spec.LoadBalancing{Sticky: &spec.Sticky{Header: "x", Cookie: &spec.StickyCookie{Name: "c"}}}})
		}, "set header or cookie, not both"},
		{"route to unknown service", func(c *Config) {
			c.Mesh.Routes = map[string][]*spec.RouteDestination{"users": {{Destination: "nope", Weight: 100}}}
		}, `no service "nope"`},
		{"bad when key", func(c *Config) {
			c.Mesh.Policies = []*spec.Policy{{Name: "p", To: "users", Action: "allow", When: []*spec.PolicyCondition{{Key: "request.body", Values: []string{"x"}}}}}
		}, `key "request.body"`},
		{"bad retry on", func(c *Config) {
			c.Services["users"] = traffic(spec.Traffic{Retry: &spec.Retry{Attempts: 1, On: []string{"sometimes"}}})
		}, `retry.on "sometimes"`},
		{"ingress to unknown service", func(c *Config) {
			c.Ingress = []*spec.Ingress{{Name: "web", Paths: []*spec.IngressPath{{Path: "/", To: "service:nope"}}}}
		}, `ingress "web": paths[0]: no service "nope"`},
	} {
		cfg := baseConfig(t, "users")
		tc.edit(&cfg)
		_, err := New(cfg, newFakeEndpoints())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestStickyImpliesRingHash(t *testing.T) {
	p, err := compileLB(spec.LoadBalancing{Algorithm: "least_request", Sticky: &spec.Sticky{Header: "x-user"}})
	if err != nil || p.alg != lbRingHash {
		t.Fatalf("compileLB = %v, %v; want ring_hash", p.alg, err)
	}
}
