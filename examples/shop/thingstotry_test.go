package shop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/nubo-dev/nubo/internal/cli"
	"github.com/nubo-dev/nubo/internal/nubotest"
	systest "github.com/nubo-dev/nubo/sdk/nubotest"
)

// waitTimeout bounds each wait for something the example does on its own:
// the engine to build and start it, a mail, a charge, a dead letter.
const waitTimeout = 2 * time.Minute

// shop is the example running in an engine of this process, as nubo up runs it.
type shop struct {
	api     string // the gateway's prod stage: README.md's $API
	gateway string // http://HOST:PORT of the gateway
	ingress string // http://HOST:PORT of the plain-HTTP ingress
	console string // HOST:PORT of the console, admin and platform API
}

// TestThingsToTry runs examples/shop with nubo up's engine and sends the exact
// HTTP equivalents of the commands under "Things to try" in README.md, in
// their order, checking what each command's comment says.
func TestThingsToTry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole example (about 30s)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		// The engine builds every program with the go command.
		if os.Getenv("CI") == "true" {
			t.Fatalf("the go command is needed to run the example: %v", err)
		}
		t.Skipf("the go command is needed to run the example: %v", err)
	}
	s := startShop(t)

	t.Run("canary", func(t *testing.T) { testCanary(t, s) })
	token := s.signUpAndOrder(t)
	s.declinedOrder(t, token)
	s.salesReport(t)
	s.partners(t)
}

// startShop starts the example with sdk/nubotest, the harness users get:
// nubo up's engine in this process, every listener on a free port and its
// state in a temporary folder, so that it runs beside a nubo up of the same
// example. Secrets come from secrets/dev.env, as on a fresh clone.
func startShop(t *testing.T) *shop {
	t.Helper()
	sys := systest.Up(t, specFile, systest.ReadyTimeout(waitTimeout))
	st := sys.Status()
	s := &shop{gateway: st.Addresses["gateway"], ingress: st.Addresses["ingress"], console: st.Console}
	if s.gateway == "" || s.ingress == "" {
		t.Fatalf("the shop runs no gateway or no ingress: %v", st.Addresses)
	}
	s.api = s.gateway + "/prod"
	return s
}

// answer is what curl shows of an HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// client is curl: no proxy (every address is loopback), no cookie jar, no
// redirects followed.
var client = &http.Client{
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
	Timeout: 30 * time.Second,
}

// send sends a request as curl does with -H for each header and -d for a
// non-empty body. It is safe for concurrent use.
func send(method, url string, header http.Header, body string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{}, err
	}
	for k, v := range header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	if host := header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: read the answer: %w", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, raw}, nil
}

// curl is send for the test's own goroutine: it fails the test on an error.
func curl(t *testing.T, method, url string, header http.Header, body string) answer {
	t.Helper()
	a, err := send(method, url, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return a
}

// want fails the test unless the answer has the status, then decodes its JSON
// body into out when out is not nil.
func (a answer) want(t *testing.T, what string, status int, out any) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: answered %d %s, want %d", what, a.status, a.body, status)
	}
	if out != nil {
		if err := json.Unmarshal(a.body, out); err != nil {
			t.Fatalf("%s: answer %s: %v", what, a.body, err)
		}
	}
}

// hdr builds the -H headers of a curl command.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// nubo runs a nubo command against the running example, in this process,
// as `go run ./cmd/nubo ARGS -f examples/shop/nubo.yaml` runs it; --addr
// stands for the spec, whose recorded address is the test's own engine.
func (s *shop) nubo(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--addr", s.console)
	if code := cli.Run(t.Context(), args, bytes.NewReader(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("nubo %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// Canary sample size and acceptance bounds. Each answered request's version
// is an independent draw, so the number of v2 answers among m is
// Binomial(m, p), with p = 0.1 by mesh.routes. The catalog's 1% of injected
// aborts take requests out of the sample before their version shows, which
// can move p among the answered ones by 0.001 at most. The bounds are
// computed exactly for that range: P(count < lo | p = 0.099) <= 5e-7 and
// P(count > hi | p = 0.101) <= 5e-7, so a correct 90/10 split fails this
// test less than once in a million runs. With m = 1000 they are 5.6% and
// 15% (TestBinomialBounds), far from 0% (no canary), 20% or 50%.
const (
	canaryRequests = 1000
	canaryP        = 0.1
	canaryShift    = 0.001
	canaryAlpha    = 5e-7 // per side
	// The prod stage's throttle is 200 requests/s with a burst of 400:
	// staying under it keeps 429s out of the count.
	canaryRate    = 150
	canaryWorkers = 8 // the catalog delays 5% of calls by 300ms
)

// binomialBounds returns the largest lo with P(X < lo) <= alpha for X ~
// Binomial(n, pLo), and the smallest hi with P(X > hi) <= alpha for X ~
// Binomial(n, pHi): a count below lo, or above hi, has probability at most
// alpha.
func binomialBounds(n int, pLo, pHi, alpha float64) (lo, hi int) {
	pmf := func(k int, p float64) float64 {
		a, _ := math.Lgamma(float64(n + 1))
		b, _ := math.Lgamma(float64(k + 1))
		c, _ := math.Lgamma(float64(n - k + 1))
		return math.Exp(a - b - c + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
	}
	for tail := 0.0; lo <= n && tail+pmf(lo, pLo) <= alpha; lo++ {
		tail += pmf(lo, pLo)
	}
	hi = n
	for tail := 0.0; hi >= 0 && tail+pmf(hi, pHi) <= alpha; hi-- {
		tail += pmf(hi, pHi)
	}
	return lo, hi
}

func TestBinomialBounds(t *testing.T) {
	// The values of the canary's comment, and a case small enough to
	// check by hand: Binomial(4, 0.5) has P(X=0) = P(X=4) = 1/16.
	if lo, hi := binomialBounds(canaryRequests, canaryP-canaryShift, canaryP+canaryShift, canaryAlpha); lo != 56 || hi != 150 {
		t.Errorf("bounds for %d requests: [%d, %d], want [56, 150]", canaryRequests, lo, hi)
	}
	if lo, hi := binomialBounds(4, 0.5, 0.5, 1.0/16); lo != 1 || hi != 3 {
		t.Errorf("bounds of Binomial(4, 0.5) at 1/16: [%d, %d], want [1, 3]", lo, hi)
	}
	if lo, hi := binomialBounds(4, 0.5, 0.5, 0.05); lo != 0 || hi != 4 {
		t.Errorf("bounds of Binomial(4, 0.5) at 0.05: [%d, %d], want [0, 4]", lo, hi)
	}
}

// testCanary checks the README's four canary commands.
func testCanary(t *testing.T, s *shop) {
	// curl -si $API/products: v1's answers carry the catalog's sticky
	// cookie and are not cached; the first v2 answer is, and from then on
	// the route answers v2 from the cache, even to no-cache. Looking for
	// the first hit gives up after 200 requests: with v2 one call in ten,
	// 200 without one happen with probability 0.9^200, below 1e-9.
	var hit answer
	for i := 0; i < 200 && hit.header.Get("Nubo-Cache") != "hit"; i++ {
		a := curl(t, "GET", s.api+"/products", nil, "")
		if a.status == http.StatusServiceUnavailable {
			continue // one of the catalog's injected aborts
		}
		a.want(t, "GET $API/products", http.StatusOK, nil)
		v, c := a.header.Get("X-Catalog-Version"), a.header.Get("Nubo-Cache")
		if v == "v1" && (c != "miss" || !strings.HasPrefix(a.header.Get("Set-Cookie"), "catalog-session=")) {
			t.Fatalf("GET $API/products: v1 answered with Nubo-Cache %q, Set-Cookie %q; want a miss that sets catalog-session", c, a.header.Get("Set-Cookie"))
		}
		hit = a
	}
	if hit.header.Get("Nubo-Cache") != "hit" || hit.header.Get("X-Catalog-Version") != "v2" {
		t.Fatalf("GET $API/products 200 times: last answer %s from the cache %q; want a cached v2 answer", hit.header.Get("X-Catalog-Version"), hit.header.Get("Nubo-Cache"))
	}
	for _, h := range []http.Header{nil, hdr("cache-control", "no-cache")} {
		a := curl(t, "GET", s.api+"/products", h, "")
		if a.header.Get("Nubo-Cache") != "hit" || a.header.Get("X-Catalog-Version") != "v2" {
			t.Errorf("GET $API/products %v after a cached v2: %s, Nubo-Cache %q; want v2 from the cache (30s TTL)", h, a.header.Get("X-Catalog-Version"), a.header.Get("Nubo-Cache"))
		}
	}

	// The for loop over the partners' route with no-cache: the split.
	counts, err := countVersions(s.api+"/partners/products", hdr("x-api-key", "acme-dev-key", "cache-control", "no-cache"))
	if err != nil {
		t.Fatal(err)
	}
	answered := counts["v1"] + counts["v2"]
	lo, hi := binomialBounds(answered, canaryP-canaryShift, canaryP+canaryShift, canaryAlpha)
	t.Logf("partners' route, cache skipped: %v (v2 accepted in [%d, %d] of %d)", counts, lo, hi, answered)
	if answered+counts["aborted"] != canaryRequests || counts["v2"] < lo || counts["v2"] > hi {
		t.Errorf("%d requests through the gateway gave %v; want every one answered by v1 or v2 or aborted, and v2 in [%d, %d]", canaryRequests, counts, lo, hi)
	}

	// The dev stage always calls catalog-v2 (20 requests: its throttle
	// allows a burst of 40); the ingress's /products always reaches catalog
	// v1, as it is not routed by mesh.routes. If it were, 100 answers of v1
	// alone would happen with probability 0.9^100.
	for _, c := range []struct {
		what, url, host, want string
		n                     int
	}{
		{"GET /dev/products", s.gateway + "/dev/products", "", "v2", 20},
		{"GET /products on the ingress", s.ingress + "/products", "shop.localhost", "v1", 100},
	} {
		for i := 0; i < c.n; i++ {
			a := curl(t, "GET", c.url, hdr("host", c.host), "")
			if a.status == http.StatusServiceUnavailable {
				continue // an injected abort
			}
			a.want(t, c.what, http.StatusOK, nil)
			if v := a.header.Get("X-Catalog-Version"); v != c.want {
				t.Fatalf("%s: answer %d is %s, want %s", c.what, i+1, v, c.want)
			}
		}
	}
}

// countVersions sends canaryRequests GETs of url with header, from several
// workers at canaryRate, and counts the answers by X-Catalog-Version, with
// the catalog's injected 503s as "aborted".
func countVersions(url string, header http.Header) (map[string]int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lim := rate.NewLimiter(canaryRate, 1)
	jobs := make(chan int)
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		errs   []error
		wg     sync.WaitGroup
	)
	for range canaryWorkers {
		wg.Go(func() {
			for range jobs {
				what, err := versionOf(ctx, lim, url, header)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					cancel()
				} else {
					counts[what]++
				}
				mu.Unlock()
			}
		})
	}
	for i := 0; i < canaryRequests && ctx.Err() == nil; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return counts, errors.Join(errs...)
}

// versionOf sends one request and says which catalog answered it, or
// "aborted" for an injected 503. A 429 (the stage's throttle) is sent again
// after its Retry-After, as a client would.
func versionOf(ctx context.Context, lim *rate.Limiter, url string, header http.Header) (string, error) {
	for {
		if err := lim.Wait(ctx); err != nil {
			return "", err
		}
		a, err := send("GET", url, header, "")
		if err != nil {
			return "", err
		}
		switch {
		case a.status == http.StatusTooManyRequests:
			secs, _ := strconv.Atoi(a.header.Get("Retry-After"))
			time.Sleep(time.Duration(max(secs, 1)) * time.Second)
			continue
		case a.status == http.StatusServiceUnavailable && strings.Contains(string(a.body), "fault filter abort"):
			return "aborted", nil
		case a.status != http.StatusOK:
			return "", fmt.Errorf("GET %s: %d %s", url, a.status, a.body)
		case a.header.Get("Nubo-Cache") != "bypass":
			return "", fmt.Errorf("GET %s with no-cache: Nubo-Cache %q, want bypass", url, a.header.Get("Nubo-Cache"))
		}
		v := a.header.Get("X-Catalog-Version")
		if v != "v1" && v != "v2" {
			return "", fmt.Errorf("GET %s: X-Catalog-Version %q", url, v)
		}
		return v, nil
	}
}

// signUpAndOrder checks the sign-up and the first order, and returns the
// customer's token.
func (s *shop) signUpAndOrder(t *testing.T) string {
	var created map[string]any
	curl(t, "POST", s.api+"/users", hdr("content-type", "application/json"), `{"email":"ada@shop.localhost","name":"Ada"}`).
		want(t, "POST $API/users", http.StatusCreated, &created)
	if created["id"] != "1" || created["email"] != "ada@shop.localhost" || len(created) != 2 {
		t.Errorf("POST $API/users answered %v, want id 1 and the email only (the route's response transform)", created)
	}
	// The account's stream in the event store starts with its signup.
	if out := s.nubo(t, "eventstore", "read", "user-1"); !regexp.MustCompile(`(?m)^0 +\d+ +\S+ +com\.shop\.user\.created +\S+ +\{.*"email":"ada@shop\.localhost"`).MatchString(out) {
		t.Errorf("nubo eventstore read user-1:\n%s", out)
	}
	// nubo logs send-welcome: the outbox record is the mail.
	nubotest.WaitFor(t, waitTimeout, func() error {
		logs := s.nubo(t, "logs", "send-welcome")
		for _, line := range strings.Split(logs, "\n") {
			_, rec, _ := strings.Cut(line, "{")
			var mail map[string]any
			if json.Unmarshal([]byte("{"+rec), &mail) == nil && mail["msg"] == "outbox" {
				if mail["to"] != "ada@shop.localhost" || mail["subject"] != "Welcome to Nubo Coffee, Ada!" {
					return fmt.Errorf("the outbox record is %v, want a welcome for Ada", mail)
				}
				return nil
			}
		}
		return fmt.Errorf("nubo logs send-welcome has no outbox record:\n%s", logs)
	})

	// TOKEN=$(go run ./examples/shop/tools/devtoken -sub 1)
	// It runs from the repository's root, as README.md's commands do.
	cmd := exec.Command("go", "run", "./examples/shop/tools/devtoken", "-sub", "1")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run ./examples/shop/tools/devtoken -sub 1: %v", err)
	}
	token := strings.TrimSpace(string(out))
	auth := hdr("authorization", "Bearer "+token)

	var placed order
	curl(t, "POST", s.api+"/orders", hdr("authorization", "Bearer "+token, "idempotency-key", "try-1", "content-type", "application/json"),
		`{"userId":"1","items":[{"productId":"p-100","quantity":2}]}`).want(t, "POST $API/orders", http.StatusCreated, &placed)
	if placed.ID != "1001" || placed.Status != "placed" || placed.TotalCents != 2*2490 {
		t.Errorf("POST $API/orders answered %+v, want order 1001 placed for %d cents", placed, 2*2490)
	}
	nubotest.WaitFor(t, waitTimeout, func() error {
		var o order
		a, err := send("GET", s.api+"/orders/1001", auth, "")
		if err != nil {
			return err
		}
		// A cached answer would say "placed" for the stage's 60 s.
		if c := a.header.Get("Nubo-Cache"); c == "hit" {
			t.Fatalf("GET $API/orders/1001 was answered from the gateway's cache: %s", a.body)
		}
		if a.status != http.StatusOK || json.Unmarshal(a.body, &o) != nil || o.Status != "paid" || o.ChargeID != "ch_test_1001" {
			return fmt.Errorf("GET $API/orders/1001: %d %s, want it paid with charge ch_test_1001", a.status, a.body)
		}
		return nil
	})

	// The account: orders appends the order to the event store, whose
	// customer-stats projection delivers it to users, which counts it.
	nubotest.WaitFor(t, waitTimeout, func() error {
		var u user
		a, err := send("GET", s.api+"/users/1", auth, "")
		if err != nil {
			return err
		}
		if a.status != http.StatusOK || json.Unmarshal(a.body, &u) != nil || u.ID != "1" || u.Email != "ada@shop.localhost" || u.Orders != 1 || u.SpentCents != 2*2490 {
			return fmt.Errorf("GET $API/users/1: %d %s, want user 1 with 1 order and %d cents spent", a.status, a.body, 2*2490)
		}
		return nil
	})
	// A rename is the account's second event; another account is not
	// this customer's to rename.
	var u user
	curl(t, "PATCH", s.api+"/users/1", hdr("authorization", "Bearer "+token, "content-type", "application/json"), `{"name":"Ada Lovelace"}`).
		want(t, "PATCH $API/users/1", http.StatusOK, &u)
	if u.Name != "Ada Lovelace" || u.Orders != 1 {
		t.Errorf("PATCH $API/users/1 answered %+v, want the name Ada Lovelace and the order still counted", u)
	}
	if out := s.nubo(t, "eventstore", "read", "user-1"); !regexp.MustCompile(`(?m)^1 +\d+ +\S+ +com\.shop\.user\.renamed +\S+ +\{"name":"Ada Lovelace"\}`).MatchString(out) {
		t.Errorf("nubo eventstore read user-1 after the rename:\n%s", out)
	}
	if a := curl(t, "PATCH", s.api+"/users/2", hdr("authorization", "Bearer "+token, "content-type", "application/json"), `{"name":"Mallory"}`); a.status != http.StatusForbidden {
		t.Errorf("PATCH $API/users/2 with user 1's token: %d %s, want 403", a.status, a.body)
	}
	// Without a token, the customers' authorizer refuses.
	if a := curl(t, "GET", s.api+"/orders/1001", nil, ""); a.status != http.StatusUnauthorized {
		t.Errorf("GET $API/orders/1001 without a token: %d %s, want 401", a.status, a.body)
	}
	return token
}

// declinedOrder checks that an order over the charge limit ends in
// order-jobs-dlq, and what nubo dlq list says of it.
func (s *shop) declinedOrder(t *testing.T, token string) {
	var placed order
	curl(t, "POST", s.api+"/orders", hdr("authorization", "Bearer "+token, "idempotency-key", "try-2", "content-type", "application/json"),
		`{"userId":"1","items":[{"productId":"p-300","quantity":6}]}`).want(t, "POST $API/orders", http.StatusCreated, &placed)
	if placed.ID != "1002" || placed.TotalCents != 6*89900 {
		t.Fatalf("POST $API/orders answered %+v, want order 1002 for %d cents", placed, 6*89900)
	}
	// nubo dlq list: every dead-letter queue, with counts.
	nubotest.WaitFor(t, waitTimeout, func() error {
		var got struct {
			DeadLetterQueues []struct {
				Name        string `json:"name"`
				DeadLetters int    `json:"deadLetters"`
			} `json:"deadLetterQueues"`
		}
		out := s.nubo(t, "dlq", "list", "-o", "json")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			return fmt.Errorf("nubo dlq list -o json: %v\n%s", err, out)
		}
		want := fmt.Sprint([]any{"loyalty-dlq", 0, "order-jobs-dlq", 1, "welcome-dlq", 0})
		var have []any
		for _, q := range got.DeadLetterQueues {
			have = append(have, q.Name, q.DeadLetters)
		}
		if fmt.Sprint(have) != want {
			return fmt.Errorf("nubo dlq list: %v, want %s", have, want)
		}
		return nil
	})
	if out := s.nubo(t, "dlq", "list"); !regexp.MustCompile(`(?m)^order-jobs-dlq +1$`).MatchString(out) {
		t.Errorf("nubo dlq list:\n%s\nwant a line order-jobs-dlq 1", out)
	}
	// nubo dlq list order-jobs-dlq: the declined order, and why.
	out := s.nubo(t, "dlq", "list", "order-jobs-dlq", "-o", "json")
	var dls struct {
		DeadLetters []struct {
			Origin    string          `json:"origin"`
			Attempts  int             `json:"attempts"`
			LastError string          `json:"lastError"`
			Event     json.RawMessage `json:"event"`
		} `json:"deadLetters"`
	}
	if err := json.Unmarshal([]byte(out), &dls); err != nil || len(dls.DeadLetters) != 1 {
		t.Fatalf("nubo dlq list order-jobs-dlq: %v\n%s", err, out)
	}
	dl := dls.DeadLetters[0]
	var ev struct {
		Type string `json:"type"`
		Data struct {
			OrderID string `json:"orderId"`
		} `json:"data"`
	}
	if err := json.Unmarshal(dl.Event, &ev); err != nil {
		t.Fatalf("the dead letter's event: %v\n%s", err, dl.Event)
	}
	if ev.Type != "com.shop.order.placed" || ev.Data.OrderID != "1002" || dl.Origin != "function:order-processor" ||
		dl.Attempts != 3 || !strings.Contains(dl.LastError, "declined order 1002") {
		t.Errorf("order-jobs-dlq holds %s, origin %q, %d attempts, last error %q; want order 1002 declined by order-processor after 3 attempts",
			dl.Event, dl.Origin, dl.Attempts, dl.LastError)
	}
	var o order
	curl(t, "GET", s.api+"/orders/1002", hdr("authorization", "Bearer "+token), "").want(t, "GET $API/orders/1002", http.StatusOK, &o)
	if o.Status != "placed" {
		t.Errorf("the declined order 1002 is %q, want still placed", o.Status)
	}
}

// salesReport checks POST $API/admin/reports.
func (s *shop) salesReport(t *testing.T) {
	var rep struct {
		Kind         string `json:"kind"`
		Since        string `json:"since"`
		Orders       *int   `json:"orders"`
		RevenueCents *int64 `json:"revenueCents"`
	}
	curl(t, "POST", s.api+"/admin/reports", hdr("x-api-key", "staff-dev-key"), "").want(t, "POST $API/admin/reports", http.StatusOK, &rep)
	// The instance that charged order 1001 counts it; one started since
	// (after scaling to zero) counts nothing.
	if rep.Kind != "sales-report" || rep.Since == "" || rep.Orders == nil || rep.RevenueCents == nil ||
		*rep.RevenueCents != int64(*rep.Orders)*2*2490 || *rep.Orders > 1 {
		t.Errorf("POST $API/admin/reports: %+v, want a sales report of order 1001 or of none", rep)
	}
	for _, key := range []string{"", "acme-dev-key"} {
		if a := curl(t, "POST", s.api+"/admin/reports", hdr("x-api-key", key), ""); a.status != http.StatusUnauthorized && a.status != http.StatusForbidden {
			t.Errorf("POST $API/admin/reports with key %q: %d %s, want it refused", key, a.status, a.body)
		}
	}
}

// partners checks the partners' route with and without the key.
func (s *shop) partners(t *testing.T) {
	var products []struct {
		ID string `json:"id"`
	}
	a := curl(t, "GET", s.api+"/partners/products", hdr("x-api-key", "acme-dev-key"), "")
	for a.status == http.StatusServiceUnavailable && strings.Contains(string(a.body), "fault filter abort") {
		a = curl(t, "GET", s.api+"/partners/products", hdr("x-api-key", "acme-dev-key"), "") // an injected abort
	}
	a.want(t, "GET $API/partners/products", http.StatusOK, &products)
	if len(products) == 0 || products[0].ID != "p-100" {
		t.Errorf("GET $API/partners/products: %s, want the catalog", a.body)
	}
	if a := curl(t, "GET", s.api+"/partners/products", nil, ""); a.status != http.StatusUnauthorized {
		t.Errorf("GET $API/partners/products without a key: %d %s, want 401", a.status, a.body)
	}
}
