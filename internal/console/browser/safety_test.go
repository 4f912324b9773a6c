package browser_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/console"
)

// TestConsoleSafety checks item 10 of the console against the real engine:
// a state-changing request needs the same origin and the run's token, a
// foreign Host is refused, the token file is the user's only, and a page
// of another origin in a real browser can neither act nor read the token.
func TestConsoleSafety(t *testing.T) {
	sys := startSystem(t)
	api := sys.API()
	tokPath := filepath.Join(sys.Status().StateDir, console.TokenFile)
	fi, err := os.Stat(tokPath)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", tokPath, fi.Mode().Perm())
	}
	tok := console.ReadToken(sys.Status().StateDir)
	if len(tok) < 32 {
		t.Fatalf("token %q: too short", tok)
	}

	restart := api + "/admin/v1/services/api/restart"
	cases := []struct {
		name    string
		method  string
		url     string
		headers map[string]string
		host    string
		want    int
		msg     string
	}{
		{"cross-origin POST with the token", "POST", restart, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", console.TokenHeader: tok}, "", 403, "cross-origin request refused"},
		{"same-site POST from another port", "POST", restart, map[string]string{"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site", console.TokenHeader: tok}, "", 403, "cross-origin request refused"},
		{"POST without the token", "POST", restart, nil, "", 403, "missing console token"},
		{"POST with a wrong token", "POST", restart, map[string]string{console.TokenHeader: strings.Repeat("0", 64)}, "", 403, "wrong console token"},
		{"browser publish without the token", "POST", api + "/v1/queues/jobs", map[string]string{"Sec-Fetch-Site": "same-origin"}, "", 403, "missing console token"},
		{"explorer call without the token", "POST", api + "/console/v1/call", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": api}, "", 403, "missing console token"},
		{"foreign Host", "GET", api + "/", nil, "evil.example:4500", 421, "refused"},
		{"foreign Host with the token", "POST", restart, map[string]string{console.TokenHeader: tok}, "rebound.example", 421, "refused"},
		{"POST with the token", "POST", restart, map[string]string{console.TokenHeader: tok}, "", 202, "restarting"},
		{"POST with a Bearer token", "POST", restart, map[string]string{"Authorization": "Bearer " + tok}, "", 202, "restarting"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, c.url, nil)
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			if c.host != "" {
				req.Host = c.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want || !strings.Contains(string(body), c.msg) {
				t.Errorf("%s %s: %d %s, want %d with %q", c.method, c.url, resp.StatusCode, body, c.want, c.msg)
			}
		})
	}

	// The system's own processes publish through $NUBO_API without a
	// token: they send none of a browser's headers.
	resp, err := http.Post(api+"/v1/queues/jobs", "application/cloudevents+json",
		strings.NewReader(`{"specversion":"1.0","type":"t","source":"s","id":"x1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Errorf("a service's publish without a token: %s", resp.Status)
	}

	t.Run("a page of another origin in the browser", func(t *testing.T) {
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<!doctype html><title>evil</title><p>a page of another origin</p>")
		}))
		defer evil.Close()
		b := newBrowser(t, api)
		pid := func() int {
			for _, s := range sys.Status().Services {
				if s.Name == "api" && len(s.Replicas) > 0 {
					return s.Replicas[0].PID
				}
			}
			return 0
		}
		waitSettled := func() {
			b.waitFor("api settled", time.Minute, func() error {
				for _, s := range sys.Status().Services {
					if s.Name == "api" && len(s.Replicas) == 1 && s.Ready == 1 {
						return nil
					}
				}
				return fmt.Errorf("api is rolling")
			})
		}
		waitSettled()
		before := pid()
		b.run("open the other origin's page", 20*time.Second, navigate(evil.URL))
		var got struct{ Post, Read string }
		js := fmt.Sprintf(`(async () => {
			const post = await fetch(%[1]q + "/admin/v1/services/api/restart", {method: "POST", mode: "no-cors"}).then(r => "sent " + r.type, e => "failed " + e);
			const read = await fetch(%[1]q + "/").then(r => r.text()).then(t => "read " + t.length, e => "blocked");
			return {Post: post, Read: read};
		})()`, api)
		if err := b.evalAsync(js, &got); err != nil {
			t.Fatal(err)
		}
		if got.Read != "blocked" {
			t.Errorf("a page of another origin read the console's page (and its token): %s", got.Read)
		}
		if got.Post != "sent opaque" {
			t.Fatalf("the cross-origin POST did not go out: %s", got.Post)
		}
		// The request went out (no-cors sends it); the console refused it.
		waitSettled()
		if after := pid(); after != before {
			t.Errorf("a cross-origin POST from the browser restarted api: pid %d -> %d (%s)", before, after, got.Post)
		}
		b.shot("cross-origin")
	})
}
